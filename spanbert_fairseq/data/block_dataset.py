"""Blocks: whole lines packed greedily within one document (docs/data.md, "Blocks")."""

import numpy as np
import torch
from fairseq.data import FairseqDataset

from . import span_masking_fast


class DocumentBlockDataset(FairseqDataset):
    """Items are blocks of at most `block_size` tokens (no [CLS]/[SEP]), never crossing a document.

    Lines (items of the binaries minus their trailing eos) are packed greedily; an eos-only item ends
    a document; a line longer than a block is cut into block-size pieces, none dropped.
    """

    def __init__(self, token_file, block_size):
        self.token_file = token_file
        sizes = np.ascontiguousarray(token_file.sizes)
        begin, end, first_line, length, stats = span_masking_fast.build_blocks(sizes, block_size)
        self.begin, self.end, self.first_line = begin, end, first_line  # (blocks,) each
        self.sizes = length  # (blocks,) tokens per block
        self.stats = dict(stats, blocks=len(length), tokens=int(length.sum()))

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, index):
        """(n,) int64 tokens of block `index`: one slice of the flat array minus interior eos."""
        b, e = self.begin[index], self.end[index]
        raw = self.token_file.tokens[b:e]
        interior = (e - b) - self.sizes[index]  # lines joined into this block, each leaves one eos
        if interior:
            lines = slice(self.first_line[index], self.first_line[index] + interior)
            eos_at = self.token_file.starts[lines] + self.token_file.sizes[lines] - 1  # flat positions
            raw = np.delete(raw, eos_at - b)
        return torch.from_numpy(raw.astype(np.int64))

    def num_tokens(self, index):
        return self.sizes[index]

    def num_tokens_vec(self, indices):
        return self.sizes[indices]

    def size(self, index):
        return self.sizes[index]

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return True
