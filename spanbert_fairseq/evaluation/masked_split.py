"""One split of the data, masked once, in batches that say which merged span each target belongs to.

The blocks, masks and SBO targets are the span_bert task's own (tasks/span_bert.py, data/); the
masks are a pure function of (seed, epoch, block index), so with the evaluation seed and epoch
fixed, every checkpoint and every run is judged on the same masks.
"""

import dataclasses
import os
from typing import NamedTuple

import numpy as np
import torch

from ..data.span_masking import merged_spans
from ..tasks.span_bert import SpanBertConfig, SpanBertTask

EVALUATION_EPOCH = 1  # fixed: the epoch is part of the mask's key


class SpanBatch(NamedTuple):
    sample: dict  # the task's batch (docs/DESIGN.md): net_input, target, pair_targets
    token_span: torch.Tensor  # B x T: the batch's span index of each masked position, -1 elsewhere
    pair_span: torch.Tensor  # B x K: the span index of each SBO pair, -1 for padding rows
    span_words: np.ndarray  # (S,) length of each merged span in words
    span_tokens: np.ndarray  # (S,) length of each merged span in tokens


class MaskedSplit:
    """The blocks of one split of DATA masked with `masking_scheme` under `seed`, batch by batch, in
    block order. The vocabulary is read first (`dictionary`); `load` reads the split."""

    def __init__(self, data, masking_scheme, seed):
        # tokens_per_sample is set by `load`: the block size depends on the checkpoints compared.
        cfg = SpanBertConfig(data=str(data), tokens_per_sample=512, seed=seed, masking_scheme=masking_scheme)
        self.task = SpanBertTask.setup_task(cfg)
        self.dict_path = os.path.join(str(data), "dict.txt")
        self.word_start = self.task.dictionary.word_start_table()
        self.pad = self.task.dictionary.pad()
        self.dataset = None

    def load(self, split, tokens_per_sample):
        # A task of the block size asked for (the task checks it), over the vocabulary already read.
        cfg = dataclasses.replace(self.task.cfg, tokens_per_sample=tokens_per_sample)
        self.task = SpanBertTask(cfg, self.task.dictionary)
        self.task.load_dataset(split)
        self.dataset = self.task.dataset(split)  # item i is block i masked with (seed, epoch, i)
        self.dataset.set_epoch(EVALUATION_EPOCH)

    @property
    def dictionary(self):
        return self.task.dictionary

    def __len__(self):
        return len(self.dataset)

    def batches(self, batch_size, digest=None):
        """SpanBatch after SpanBatch; `digest` (a hashlib object), if given, takes in every masked
        block, its targets and SBO pairs, so equal digests mean equal masks."""
        for first in range(0, len(self.dataset), batch_size):
            items = [self.dataset[i] for i in range(first, min(first + batch_size, len(self.dataset)))]
            if digest is not None:
                for item in items:
                    for key in ("source", "target", "pairs"):
                        digest.update(item[key].numpy().tobytes())
            yield self._with_spans(items)

    def _with_spans(self, items):
        sample = self.dataset.collater(items)
        token_span = torch.full(sample["target"].shape, -1, dtype=torch.long)
        pair_span = torch.full(sample["pair_targets"].shape[:2], -1, dtype=torch.long)
        words, tokens = [], []
        for row, item in enumerate(items):
            target = item["target"].numpy()
            starts, ends = merged_spans(target != self.pad)
            for s, e in zip(starts, ends):
                token_span[row, s + 1 : e + 1] = len(words)  # +1: [CLS] precedes the block
                # The masker's count: the span's first token opens a word, each later word start another.
                words.append(1 + int(self.word_start[target[s + 1 : e]].sum()))
                tokens.append(e - s)
            # SBO pairs are the spans with both boundaries inside the block, in block order.
            inside = [len(words) - len(starts) + k for k, (s, e) in enumerate(zip(starts, ends))
                      if s > 0 and e < len(target)]
            assert len(inside) == len(item["pairs"]), "SBO pairs do not match the merged spans"
            pair_span[row, : len(inside)] = torch.tensor(inside, dtype=torch.long)
        return SpanBatch(sample, token_span, pair_span, np.array(words, dtype=np.int64),
                         np.array(tokens, dtype=np.int64))
