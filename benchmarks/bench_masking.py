"""Masking throughput on 510-token blocks of real text, one core, one run, sides interleaved.

Sides (each masks the same blocks with seeds keyed on the block index):
  spanbert     our SpanMasker.mask_block: source, target, SBO pairs and pair targets
  authors      a re-implementation of the authors' fairseq-0.6 span masking: numpy seeded per item,
               a Python loop per span (np.random.choice for length and anchor, a Python set of
               masked positions), interval merging, replacement and SBO targets in Python
  masked_lm    fairseq's MaskTokensDataset (BERT token masking): a source and a target item per
               block, as fairseq's masked_lm task fetches them (each item masks the block again)
  masked_lm_src  the same, source item only: one masking per block, the kindest reading of fairseq

    python benchmarks/bench_masking.py --blocks 400 --rounds 15
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

BLOCK = 510


def real_blocks(count):
    """`count` blocks of exactly 510 BERT uncased WordPiece ids cut from the pydoc prose."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(str(benchlib.bert_vocab_path()), lowercase=True)
    lines = [line for doc in benchlib.pydoc_documents() for line in doc]
    ids = np.concatenate([e.ids for e in tokenizer.encode_batch(lines, add_special_tokens=False)])
    blocks = [ids[i : i + BLOCK].astype(np.int64) for i in range(0, len(ids) - BLOCK + 1, BLOCK)]
    return [blocks[i % len(blocks)] for i in range(count)]


class AuthorsSpanMasking:
    """The authors' algorithm (fairseq 0.6 fork, `PairWithSpanMaskingScheme`), restated in Python.

    Per item: numpy's global RNG seeded from (seed, epoch, index); per span: a length from
    np.random.choice over the truncated geometric, an anchor from np.random.choice, rejected if
    already masked, expanded to whole words by walking a word-piece map; then spans merged and
    replaced per span, and SBO pair targets built as Python lists.
    """

    def __init__(self, dictionary, corpus_tokens, mask_ratio=0.15, p=0.2, lower=1, upper=10, max_pair_targets=15):
        self.dictionary = dictionary
        self.is_word_start = dictionary.word_start_table()
        self.tokens = corpus_tokens  # random replacements are draws from the corpus (its unigram)
        self.mask_ratio, self.max_pair_targets = mask_ratio, max_pair_targets
        self.lens = list(range(lower, upper + 1))
        weights = [p * (1 - p) ** (n - lower) for n in self.lens]
        self.len_distrib = [w / sum(weights) for w in weights]

    def word_end(self, word_piece_map, anchor):
        right = anchor + 1
        while right < len(word_piece_map) and not word_piece_map[right]:
            right += 1
        return right

    def __call__(self, sentence, seed, epoch, index):
        from fairseq.data import data_utils

        with data_utils.numpy_seed(seed, epoch, index):
            return self.mask(sentence)

    def mask(self, sentence):
        n = len(sentence)
        mask_num = math.ceil(n * self.mask_ratio)
        word_piece_map = [bool(self.is_word_start[t]) for t in sentence]
        mask, spans = set(), []
        while len(mask) < mask_num:
            span_len = np.random.choice(self.lens, p=self.len_distrib)
            anchor = np.random.choice(n)
            if anchor in mask:
                continue
            left = anchor
            while left > 0 and not word_piece_map[left]:
                left -= 1
            spans.append([left, left])
            words, right = 0, left
            while words < span_len and right < n and len(mask) < mask_num:
                start, right = right, self.word_end(word_piece_map, right)
                words += 1
                for i in range(start, right):
                    if len(mask) >= mask_num:
                        break
                    mask.add(i)
                    spans[-1][-1] = i
        return self.replace(sentence, spans)

    def replace(self, sentence, spans):
        d = self.dictionary
        sentence = np.copy(sentence)
        target = np.full(len(sentence), d.pad())
        pair_targets = []
        for start, end in merge_intervals(spans):
            if start > 0 and end < len(sentence) - 1:
                pair_targets.append([start - 1, end + 1] + [sentence[i] for i in range(start, end + 1)])
            rand = np.random.random()
            for i in range(start, end + 1):
                target[i] = sentence[i]
                if rand < 0.8:
                    sentence[i] = d.mask()
                elif rand < 0.9:
                    sentence[i] = np.random.choice(self.tokens)
        width = self.max_pair_targets + 2
        pair_targets = [(row + [d.pad()] * width)[:width] for row in pair_targets]
        return sentence, target, pair_targets


def merge_intervals(intervals):
    merged = []
    for interval in sorted(intervals, key=lambda x: x[0]):
        if merged and interval[0] <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], interval[1])
        else:
            merged.append(list(interval))
    return merged


def make_sides(blocks, dictionary, counts):
    import torch
    from fairseq.data import MaskTokensDataset

    from spanbert_fairseq.data.span_masking import MaskingParams, SpanMasker

    ours = SpanMasker(MaskingParams(), dictionary, unigram_counts=counts)
    authors = AuthorsSpanMasking(dictionary, np.concatenate(blocks[:50]))
    tensors = [torch.from_numpy(b) for b in blocks]
    src, tgt = MaskTokensDataset.apply_mask(
        tensors, dictionary, pad_idx=dictionary.pad(), mask_idx=dictionary.mask(), seed=1,
        mask_prob=0.15, leave_unmasked_prob=0.1, random_token_prob=0.1,
    )
    epoch = [0]

    def run_spanbert():
        epoch[0] += 1
        for i, b in enumerate(blocks):
            ours.mask_block(b, 1, epoch[0], i)

    def run_authors():
        epoch[0] += 1
        for i, b in enumerate(blocks):
            authors(b, 1, epoch[0], i)

    def run_masked_lm():
        epoch[0] += 1  # a new epoch: MaskTokensDataset's per-item LRU caches do not hit
        src.set_epoch(epoch[0])
        tgt.set_epoch(epoch[0])
        for i in range(len(blocks)):
            src[i], tgt[i]

    def run_masked_lm_src():
        epoch[0] += 1
        src.set_epoch(epoch[0])
        for i in range(len(blocks)):
            src[i]

    return {"spanbert": run_spanbert, "authors": run_authors, "masked_lm": run_masked_lm,
            "masked_lm_src": run_masked_lm_src}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=400, help="blocks masked per round and side")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    import torch

    from spanbert_fairseq.data.dictionary import BertDictionary

    torch.set_num_threads(1)
    dictionary = BertDictionary.load(str(benchlib.bert_vocab_path()))
    blocks = real_blocks(args.blocks)
    counts = np.bincount(np.concatenate(blocks), minlength=len(dictionary)) + 1
    times = benchlib.interleaved_times(make_sides(blocks, dictionary, counts), args.rounds, warmup=1)
    rate = {name: args.blocks / benchlib.median(t) for name, t in times.items()}

    print(benchlib.machine_line())
    print(benchlib.versions_line())
    print(f"command: python benchmarks/bench_masking.py --blocks {args.blocks} --rounds {args.rounds}")
    print(f"{args.blocks} blocks x {BLOCK} tokens of pydoc prose (BERT uncased WordPiece), {args.rounds} "
          "interleaved rounds after warm-up, one thread, medians")
    for name, r in rate.items():
        print(f"  {name:14s} {r:10.0f} blocks/s  {1e6 / r:8.1f} us/block  (IQR {benchlib.spread(times[name]):.0%})")
    print(f"spanbert / authors   = {rate['spanbert'] / rate['authors']:.1f}x")
    print(f"spanbert / masked_lm = {rate['spanbert'] / rate['masked_lm']:.1f}x "
          f"(source item only: {rate['spanbert'] / rate['masked_lm_src']:.1f}x)")


if __name__ == "__main__":
    main()
