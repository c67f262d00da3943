"""Statistical conformance of span masking with docs/data.md, "Span masking" (and its "SBO targets").

Blocks are real pydoc prose tokenized with BERT uncased WordPiece (~15% continuation pieces) and
packed to 510 tokens as the task does. Every statistical test uses fixed seeds and states its
tolerance; failures would be real deviations, not flakes.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from spanbert_fairseq.data.binaries import TokenFile
from spanbert_fairseq.data.block_dataset import DocumentBlockDataset
from spanbert_fairseq.data.span_lengths import span_length_probs
from spanbert_fairseq.data.span_masking import MaskingParams, SpanMasker, merged_spans

EPOCHS = 6  # passes over the ~290 training blocks: ~1.7k masked blocks, ~40k spans


@pytest.fixture(scope="module")
def blocks(wordpiece_data):
    out, dictionary, _ = wordpiece_data
    dataset = DocumentBlockDataset(TokenFile(str(out / "train")), 510)
    return [dataset[i].numpy() for i in range(len(dataset))]


@pytest.fixture(scope="module")
def dictionary(wordpiece_data):
    return wordpiece_data[1]


def exact_budget(n, ratio="0.15"):
    return math.ceil(Fraction(ratio) * n)


def masked_runs(masked):
    """(start, end) inclusive of each maximal run of True."""
    edges = np.diff(np.concatenate([[0], masked.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def mask_all(masker, blocks, epochs=EPOCHS, seed=7):
    for epoch in range(1, epochs + 1):
        for index, block in enumerate(blocks):
            yield block, [t.numpy() for t in masker.mask_block(block, seed, epoch, index)], (seed, epoch, index)


def test_corpus_has_realistic_continuation_pieces(blocks, dictionary):
    tokens = np.concatenate(blocks)
    continuation = 1 - dictionary.word_start_table()[tokens].mean()
    assert 0.05 < continuation < 0.4, continuation
    assert np.mean([len(b) for b in blocks]) > 300


def test_drawn_span_lengths_follow_the_truncated_geometric(blocks, dictionary):
    """Chi-square goodness of fit of the drawn lengths (in words) to the truncated geometric's
    0.224 .. 0.030; p > 0.001."""
    masker = SpanMasker(MaskingParams(), dictionary)
    drawn = np.concatenate([masker.trace_spans(b, 7, e, i)[:, 2] for e in range(1, EPOCHS + 1)
                            for i, b in enumerate(blocks)])
    observed = np.bincount(drawn, minlength=11)[1:]
    expected = span_length_probs(0.2, 1, 10) * len(drawn)
    assert np.allclose(span_length_probs(0.2, 1, 10),
                       [0.224, 0.179, 0.143, 0.115, 0.092, 0.073, 0.059, 0.047, 0.038, 0.030], atol=6e-4)
    assert len(drawn) > 20_000
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_spans_cover_whole_words_up_to_the_drawn_length(blocks, dictionary):
    """Each placed span starts at a word start and covers exactly its drawn number of whole words,
    unless it meets the block end, a special, or the budget (then only the last span of the block)."""
    masker = SpanMasker(MaskingParams(), dictionary)
    word_start = dictionary.word_start_table()
    special = np.isin(np.arange(len(dictionary)), dictionary.special_ids())
    cut, realized = 0, []
    for epoch in range(1, 3):
        for index, block in enumerate(blocks):
            trace = masker.trace_spans(block, 7, epoch, index)
            starts = word_start[block].copy()
            starts[0] = True
            for k, (s, e, drawn) in enumerate(trace):
                assert starts[s] or special[block[s - 1]]
                words = int(starts[s:e].sum()) + (not starts[s])
                hit_edge = e == len(block) or special[block[e]] or k == len(trace) - 1
                if hit_edge:
                    cut += 1
                    assert words <= drawn
                else:
                    assert words == drawn and starts[e], (s, e, drawn, words)
                    realized.append(words)
    # No goodness-of-fit on `realized`: leaving out the spans that hit an edge or the budget drops
    # long spans more often than short ones, so that sample is biased towards short lengths by
    # construction. The drawn lengths are tested above, and each uncut span realises its draw exactly.
    assert len(realized) > 5_000
    assert cut < 0.1 * (len(realized) + cut)


def test_budget_is_exact_and_specials_are_never_masked(blocks, dictionary):
    masker = SpanMasker(MaskingParams(), dictionary)
    specials = dictionary.special_ids()
    rng = np.random.default_rng(0)
    for block, (_source, target, _, _), _ in mask_all(masker, blocks, epochs=2):
        # Sprinkle every special into a copy of the block: none may be masked or replaced.
        spiked = block.copy()
        where = rng.choice(len(block), 12, replace=False)
        spiked[where] = rng.choice(specials, 12)
        s_source, s_target, _, _ = [t.numpy() for t in masker.mask_block(spiked, 1, 1, 0)]
        is_special = np.isin(spiked, specials)
        assert np.all(s_target[is_special] == dictionary.pad())
        assert np.array_equal(s_source[is_special], spiked[is_special])
        assert (s_target != dictionary.pad()).sum() == min(exact_budget(len(spiked)), (~is_special).sum())
        maskable = (~np.isin(block, specials)).sum()
        assert (target != dictionary.pad()).sum() == min(exact_budget(len(block)), maskable)


@pytest.mark.parametrize("n,expected", [(1, 1), (2, 1), (7, 2), (20, 3), (40, 6), (100, 15), (510, 77)])
def test_budget_is_the_exact_ceiling(dictionary, n, expected):
    """ceil(0.15 n) in exact arithmetic: 0.15 * 20 is 3.0000000000000004 in floats, the budget 3."""
    masker = SpanMasker(MaskingParams(), dictionary)
    block = np.full(n, dictionary.index("the"))
    assert masker.budget(n) == expected
    assert (masker.mask_block(block, 0, 1, 0).target != dictionary.pad()).sum() == expected


def test_merged_spans_start_at_word_starts_and_merge(blocks, dictionary):
    """Every masked run starts at a word start; runs equal the union of the placed spans, so
    overlapping or touching spans became one."""
    masker = SpanMasker(MaskingParams(), dictionary)
    word_start = dictionary.word_start_table()
    merged = 0
    for block, (_, target, _, _), key in mask_all(masker, blocks, epochs=2):
        masked = target != dictionary.pad()
        runs = masked_runs(masked)
        for s, _ in runs:
            assert s == 0 or word_start[block[s]]
        union = np.zeros(len(block), dtype=bool)
        trace = masker.trace_spans(block, *key)
        for s, e, _ in trace:
            union[s:e] = True
        assert np.array_equal(union, masked)
        merged += len(trace) - len(runs)
    assert merged > 0  # merging happens on real text


def classify_spans(dictionary, block, source, target):
    """Per merged span: 'mask' (all [MASK]), 'keep' (all original), 'random' (all replaced, none [MASK])."""
    kinds = []
    for s, e in masked_runs(target != dictionary.pad()):
        src, orig = source[s : e + 1], block[s : e + 1]
        if np.all(src == dictionary.mask()):
            kinds.append("mask")
        elif np.all(src == orig):
            kinds.append("keep")
        elif not np.any(src == dictionary.mask()):
            kinds.append("random")
        else:
            kinds.append("mixed")
    return kinds


def within_binomial(count, n, p, z=4.5):
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p))


def test_replacement_is_decided_once_per_merged_span(blocks, dictionary):
    """80/10/10 per span, each within 4.5 binomial standard deviations; no span mixes kinds."""
    masker = SpanMasker(MaskingParams(replacement_method="span"), dictionary)
    kinds = []
    for block, (source, target, _, _), _ in mask_all(masker, blocks):
        kinds += classify_spans(dictionary, block, source, target)
    n = len(kinds)
    assert "mixed" not in kinds
    # A random span whose draws all equal the original would read as 'keep': ~1e-4 of random ones.
    assert within_binomial(kinds.count("mask"), n, 0.8)
    assert within_binomial(kinds.count("random"), n, 0.1)
    assert within_binomial(kinds.count("keep"), n, 0.1)


def test_word_piece_replacement_is_decided_per_token(blocks, dictionary):
    masker = SpanMasker(MaskingParams(replacement_method="word_piece"), dictionary)
    is_mask = is_kept = total = mixed = 0
    for block, (source, target, _, _), _ in mask_all(masker, blocks, epochs=2):
        masked = target != dictionary.pad()
        is_mask += (source[masked] == dictionary.mask()).sum()
        is_kept += (source[masked] == block[masked]).sum()
        total += masked.sum()
        mixed += classify_spans(dictionary, block, source, target).count("mixed")
    assert within_binomial(is_mask, total, 0.8) and within_binomial(is_kept, total, 0.1)
    assert mixed > 0


def test_random_tokens_follow_the_chosen_source(blocks, dictionary):
    """unigram: replacement frequencies track dict.txt counts; uniform: they do not; never specials."""
    counts = np.asarray(dictionary.count, dtype=float)
    counts[dictionary.special_ids()] = 0
    top = np.argsort(counts)[-20:]  # the 20 most frequent tokens: ~35% of the corpus
    share = {}
    for source_kind in ("unigram", "uniform"):
        cfg = MaskingParams(random_token_source=source_kind, replacement_method="word_piece",
                                leave_unmasked_prob=0.0, random_token_prob=1.0)
        masker = SpanMasker(cfg, dictionary)
        drawn = np.concatenate([src[tgt != dictionary.pad()]
                                for _, (src, tgt, _, _), _ in mask_all(masker, blocks, epochs=2)])
        assert not np.isin(drawn, dictionary.special_ids()).any()
        share[source_kind] = np.isin(drawn, top).mean()
    expected = counts[top].sum() / counts.sum()
    assert abs(share["unigram"] - expected) < 0.02, (share, expected)
    assert share["uniform"] < 0.01


def test_sbo_pairs_point_at_unmasked_boundaries_inside_the_block(blocks, dictionary):
    masker = SpanMasker(MaskingParams(), dictionary)
    n_pairs = long_spans = 0
    for block, (_, target, pairs, pair_targets), _ in mask_all(masker, blocks, epochs=2):
        masked = target != dictionary.pad()
        inner = [(s, e) for s, e in masked_runs(masked) if s > 0 and e < len(block) - 1]
        assert pairs.tolist() == [[s - 1, e + 1] for s, e in inner]
        assert not masked[pairs.ravel()].any()
        assert pair_targets.shape == (len(pairs), 15)
        for (left, right), row in zip(pairs, pair_targets):
            span = block[left + 1 : right]
            long_spans += len(span) > 15
            assert np.array_equal(row[: min(len(span), 15)], span[:15])
            assert np.all(row[len(span) :] == dictionary.pad())
        n_pairs += len(pairs)
    assert n_pairs > 5000 and long_spans > 0


@pytest.mark.parametrize("scheme", ["subword", "whole_word"])
def test_ablation_schemes_meet_the_same_budget(blocks, dictionary, scheme):
    masker = SpanMasker(MaskingParams(masking_scheme=scheme), dictionary)
    word_start = dictionary.word_start_table()
    run_lengths = []
    for block, (_, target, _, _), _ in mask_all(masker, blocks, epochs=1):
        masked = target != dictionary.pad()
        assert masked.sum() == exact_budget(len(block))
        runs = masked_runs(masked)
        run_lengths += [e - s + 1 for s, e in runs]
        if scheme == "whole_word":
            # Whole words: a run never starts or (but for the last word) ends inside a word.
            assert all(s == 0 or word_start[block[s]] for s, _ in runs)
            cut = [e for _, e in runs if e + 1 < len(block) and not word_start[block[e + 1]]]
            assert len(cut) <= 1
    # Random tokens rarely touch; geometric spans are much longer.
    assert np.mean(run_lengths) < 2.0


def test_span_scheme_masks_longer_runs_than_the_ablations(blocks, dictionary):
    mean_run = {}
    for scheme in ("span", "whole_word", "subword"):
        masker = SpanMasker(MaskingParams(masking_scheme=scheme), dictionary)
        lengths = [e - s + 1 for b, (_, t, _, _), _ in mask_all(masker, blocks, epochs=1)
                   for s, e in masked_runs(t != dictionary.pad())]
        mean_run[scheme] = np.mean(lengths)
    assert mean_run["span"] > 3.5 > mean_run["whole_word"] > mean_run["subword"]


def test_same_key_same_mask_new_epoch_new_mask(blocks, dictionary):
    a = SpanMasker(MaskingParams(), dictionary)
    b = SpanMasker(MaskingParams(), dictionary)
    block = blocks[3]
    first = a.mask_block(block, 11, 2, 3)
    for _ in range(3):
        a.mask_block(blocks[5], 11, 2, 4)
    again = b.mask_block(block, 11, 2, 3)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    targets = {a.mask_block(block, 11, epoch, 3).target.numpy().tobytes() for epoch in range(1, 11)}
    assert len(targets) == 10
    assert not np.array_equal(a.mask_block(block, 12, 2, 3).target, first.target)


def test_sentencepiece_vocabulary(sentencepiece_data):
    """Word starts from `▁`; budget, word-start and SBO invariants hold with SentencePiece too."""
    out, dictionary, _ = sentencepiece_data
    assert dictionary.is_sentencepiece()
    dataset = DocumentBlockDataset(TokenFile(str(out / "train")), 510)
    masker = SpanMasker(MaskingParams(), dictionary)
    word_start = dictionary.word_start_table()
    assert 0.1 < 1 - word_start[np.concatenate([dataset[i].numpy() for i in range(20)])].mean() < 0.7
    for index in range(len(dataset)):
        block = dataset[index].numpy()
        source, target, pairs, _ = [t.numpy() for t in masker.mask_block(block, 3, 1, index)]
        masked = target != dictionary.pad()
        assert masked.sum() == exact_budget(len(block))
        for s, _ in masked_runs(masked):
            assert s == 0 or word_start[block[s]] or block[s - 1] in dictionary.special_ids(), block[s - 1 : s + 2]
        assert not masked[pairs.ravel()].any()


def test_merged_spans_are_the_maximal_runs():
    starts, ends = merged_spans(np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=bool))
    assert starts.tolist() == [1, 4, 7] and ends.tolist() == [3, 5, 8]
    starts, ends = merged_spans(np.ones(3, dtype=bool))
    assert starts.tolist() == [0] and ends.tolist() == [3]
