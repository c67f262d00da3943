"""spanbert-eval's figures against a direct computation on the handful of blocks of a tiny split:
each block masked by the SpanMasker itself, the model run on it alone, spans found and words counted
in plain Python, each head applied to its rows by hand."""

import math
from collections import defaultdict

import pytest
import torch
import torch.nn.functional as F

from spanbert_fairseq.checkpoint_io import load_span_bert_checkpoint
from spanbert_fairseq.data.binaries import TokenFile
from spanbert_fairseq.data.block_dataset import DocumentBlockDataset
from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.data.span_masking import MaskingParams, SpanMasker
from spanbert_fairseq.models.span_bert import SpanBertModel

pytestmark = pytest.mark.slow  # a fairseq-train run makes the checkpoint

SEED = 5
TOKENS_PER_SAMPLE = 64
MAX_PAIR_TARGETS = 15


def _scored(logits, target):
    """(correct, loss in bits) of one row of logits."""
    return int(logits.argmax()) == int(target), float(-F.log_softmax(logits, -1)[target]) / math.log(2)


def _runs(target, pad):
    """Maximal runs (first, last) of positions whose target is not pad."""
    runs, i = [], 0
    while i < len(target):
        if target[i] == pad:
            i += 1
            continue
        first = i
        while i + 1 < len(target) and target[i + 1] != pad:
            i += 1
        runs.append((first, i))
        i += 1
    return runs


def direct_figures(checkpoint, data_dir):
    """row label -> sums, computed block by block without spanbert_fairseq.evaluation."""
    dictionary = BertDictionary.load(data_dir / "dict.txt")
    state = load_span_bert_checkpoint(str(checkpoint))
    model = SpanBertModel.for_dictionary(state["cfg"].model, dictionary)
    model.load_state_dict(state["model"])
    model.eval()
    encoder, pad = model.encoder, dictionary.pad()
    masker = SpanMasker(MaskingParams(), dictionary)
    blocks = DocumentBlockDataset(TokenFile(str(data_dir / "valid")), TOKENS_PER_SAMPLE - 2)
    sums = defaultdict(lambda: defaultdict(float))
    for index in range(len(blocks)):
        block = blocks[index]
        source, target, _, _ = masker.mask_block(block, SEED, 1, index)
        tokens = torch.cat([torch.tensor([dictionary.cls()]), source, torch.tensor([dictionary.sep()])])
        with torch.no_grad():
            states = encoder.extract_features(tokens[None])[0]  # T x C, position p of the block at p + 1
            for first, last in _runs(target.tolist(), pad):
                words = 1 + sum(not dictionary[int(target[p])].startswith("##") for p in range(first + 1, last + 1))
                for row in (str(words) if words <= 10 else "11+", "all"):
                    _add_span(sums[row], encoder, states, target, first, last, len(block))
    return sums


def _add_span(sums, encoder, states, target, first, last, n):
    weight = encoder.embed_weight
    sums["spans"] += 1
    mlm = [_scored(encoder.mlm_head(states[p + 1]) @ weight.T + encoder.mlm_head.bias, target[p])
           for p in range(first, last + 1)]
    sums["mlm_tokens"] += len(mlm)
    sums["mlm_correct"] += sum(c for c, _ in mlm)
    sums["mlm_loss"] += sum(loss for _, loss in mlm)
    sums["mlm_exact"] += all(c for c, _ in mlm)
    if first == 0 or last == n - 1:
        return  # a span at the block's edge has no SBO targets
    left, right = states[first][None], states[last + 2][None]  # the block's tokens first - 1 and last + 1
    sbo = [_scored(encoder.sbo_head(left, right, torch.tensor([j]))[0] @ weight.T + encoder.sbo_head.bias,
                   target[first + j])
           for j in range(min(last - first + 1, MAX_PAIR_TARGETS))]
    sums["sbo_tokens"] += len(sbo)
    sums["sbo_correct"] += sum(c for c, _ in sbo)
    sums["sbo_loss"] += sum(loss for _, loss in sbo)
    if last - first + 1 <= MAX_PAIR_TARGETS:
        sums["sbo_spans"] += 1
        sums["sbo_exact"] += all(c for c, _ in sbo)


def test_figures_equal_a_direct_computation(evaluate, trained_dir, tiny_data_dir):
    checkpoint = trained_dir / "checkpoint_last.pt"
    record = evaluate(checkpoint, "--data", tiny_data_dir, "--seed", SEED)
    expected = direct_figures(checkpoint, tiny_data_dir)
    rows = {row["span_words"]: row for row in record["checkpoints"][0]["rows"]}
    assert record["masking"]["blocks"] < 40  # a handful: the direct computation runs block by block
    assert sum(1 for label, row in rows.items() if label != "all" and row["spans"]) >= 5  # several lengths
    for label, row in rows.items():
        want = expected.get(label, defaultdict(float))
        assert row["spans"] == want["spans"], label
        for head in ("mlm", "sbo"):
            spans = want["spans" if head == "mlm" else "sbo_spans"]
            tokens = want[f"{head}_tokens"]
            assert row[f"{head}_tokens"] == tokens, (label, head)
            assert row[f"{head}_spans"] == spans, (label, head)
            if tokens:
                assert row[f"{head}_acc"] == pytest.approx(100 * want[f"{head}_correct"] / tokens, abs=1e-9)
                assert row[f"{head}_loss"] == pytest.approx(want[f"{head}_loss"] / tokens, abs=1e-4)
                assert row[f"{head}_exact"] == pytest.approx(100 * want[f"{head}_exact"] / spans, abs=1e-9)
            else:
                assert row[f"{head}_acc"] is None and row[f"{head}_loss"] is None
