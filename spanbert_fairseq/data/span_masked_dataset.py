"""Span-masked blocks and their collater: the batch contract of docs/DESIGN.md."""

import numpy as np
import torch
from fairseq.data import BaseWrapperDataset, FairseqDataset

from .head_rows import head_rows


class SpanMaskedDataset(BaseWrapperDataset):
    """Items {id, source, target, pairs, pair_targets} of blocks masked by a SpanMasker.

    The mask of block `index` is a pure function of (seed, epoch, index), so it does not depend on
    batch order, workers or world size, and changes with each epoch.
    """

    def __init__(self, blocks, masker, seed):
        super().__init__(blocks)
        self.masker = masker
        self.seed = seed
        # The epoch lives in shared memory: fairseq 0.12 reuses one DataLoader with persistent
        # workers across epochs, and their copies of this dataset must see each set_epoch.
        self._epoch = torch.ones((), dtype=torch.long).share_memory_()
        self.dictionary = masker.dictionary
        self._sizes = np.asarray(blocks.sizes) + 2  # [CLS] block [SEP]

    @property
    def epoch(self):
        return int(self._epoch)

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        self._epoch.fill_(epoch)

    def __getitem__(self, index):
        masked = self.masker.mask_block(self.dataset[index], self.seed, self.epoch, index)
        return {"id": index, **masked._asdict()}

    @property
    def sizes(self):
        return self._sizes

    def num_tokens(self, index):
        return self._sizes[index]

    def num_tokens_vec(self, indices):
        return self._sizes[indices]  # lets fairseq batch by --max-tokens without a loop per item

    def size(self, index):
        return self._sizes[index]

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None, required_batch_size_multiple=1):
        # A wrapper would batch by the blocks' sizes; batches are 2 tokens longer per row.
        return FairseqDataset.batch_by_size(self, indices, max_tokens, max_sentences, required_batch_size_multiple)

    def filter_indices_by_size(self, indices, max_sizes):
        return FairseqDataset.filter_indices_by_size(self, indices, max_sizes)

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return True  # only the masks change between epochs, and workers see the epoch (above)

    def collater(self, samples):
        d = self.dictionary
        return collate_span_batch(samples, d.pad(), d.cls(), d.sep(), self.masker.max_pair_targets)


def collate_span_batch(samples, pad, cls, sep, max_pair_targets):
    """Items -> batch: src_tokens `[CLS] source [SEP]` right-padded; pairs shifted +1 into src positions;
    the heads' rows and targets from `head_rows`, so the training step needs no host sync.

    K is the most SBO spans of any item (at least 1, so shapes never have a zero dimension);
    padding rows of pairs are 0 and of pair_targets all pad.
    """
    if not samples:
        return {}
    lengths = [len(s["source"]) for s in samples]
    bsz, width = len(samples), max(lengths) + 2
    k = max(1, max(len(s["pairs"]) for s in samples))
    src_tokens = torch.full((bsz, width), pad, dtype=torch.long)  # B x T
    target = torch.full((bsz, width), pad, dtype=torch.long)  # B x T
    pairs = torch.zeros((bsz, k, 2), dtype=torch.long)  # B x K x 2
    pair_targets = torch.full((bsz, k, max_pair_targets), pad, dtype=torch.long)  # B x K x M
    for row, (s, n) in enumerate(zip(samples, lengths)):
        src_tokens[row, 0] = cls
        src_tokens[row, 1 : n + 1] = s["source"]
        src_tokens[row, n + 1] = sep
        target[row, 1 : n + 1] = s["target"]
        n_pairs = len(s["pairs"])
        pairs[row, :n_pairs] = s["pairs"] + 1  # block position -> src_tokens position after [CLS]
        pair_targets[row, :n_pairs] = s["pair_targets"]
    src_lengths = torch.tensor(lengths, dtype=torch.long) + 2
    rows = head_rows(src_tokens, target, pad, pairs, pair_targets)
    return {
        "id": torch.tensor([s["id"] for s in samples], dtype=torch.long),
        "nsentences": bsz,
        "ntokens": int(src_lengths.sum()),
        "net_input": {"src_tokens": src_tokens, "src_lengths": src_lengths, **rows.net_input()},
        "mlm_targets": rows.mlm_targets,
        "sbo_targets": rows.sbo_targets,
        "target": target,
        "pairs": pairs,
        "pair_targets": pair_targets,
    }
