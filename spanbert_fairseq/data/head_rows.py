"""The rows the pretraining heads read, worked out on the CPU before a batch reaches the device.

Which positions are MLM targets or SBO boundaries depends on the batch's values, so finding them
on the device (nonzero, boolean indexing, a maximum read back for a shape) would make the training
step wait for the device several times per micro-batch. The collater, the hub and spanbert-eval
call `head_rows` on CPU tensors instead; docs/DESIGN.md ("Batches") names what each output holds.
"""

from typing import NamedTuple, Optional

import torch


class HeadRows(NamedTuple):
    padded: bool  # some row of src_tokens holds padding
    positions: torch.Tensor  # B x R: the positions at which the last layer is computed
    mlm_rows: torch.Tensor  # M: each MLM target's row in the flattened B*R last-layer output
    sbo_rows: Optional[torch.Tensor]  # S x 3: left boundary row, right boundary row, index in span
    mlm_targets: torch.Tensor  # M
    sbo_targets: Optional[torch.Tensor]  # S

    def net_input(self):
        """The model's keyword arguments beside src_tokens (docs/DESIGN.md, "Model forward")."""
        return {"padded": self.padded, "positions": self.positions, "mlm_rows": self.mlm_rows,
                "sbo_rows": self.sbo_rows}


def head_rows(src_tokens, target, pad, pairs=None, pair_targets=None):
    """src_tokens, target: B x T; pairs: B x K x 2 boundary positions in src_tokens; pair_targets:
    B x K x P (pad where a span is shorter). Without pairs the SBO outputs are None.

    MLM targets come in row-major order of `target`'s non-pad positions, SBO targets in row-major
    order over B x K x P; only spans with a target contribute boundary positions.
    """
    batch_size = src_tokens.size(0)
    masked = target.ne(pad)  # B x T
    needed = masked.clone()
    if pairs is not None:
        sample, span, index = pair_targets.ne(pad).nonzero(as_tuple=True)  # S each
        left, right = pairs[sample, span, 0], pairs[sample, span, 1]  # S each
        needed[sample, left] = True
        needed[sample, right] = True
    width = max(int(needed.sum(1).max()), 1) if batch_size else 1  # R
    # A stable sort keeps the needed positions in increasing order, then the others, also in order.
    order = torch.argsort(needed.to(torch.uint8), dim=1, descending=True, stable=True)
    positions = order[:, :width].contiguous()  # B x R
    first_row = torch.arange(batch_size).unsqueeze(1) * width  # B x 1
    out_row = needed.long().cumsum(1) - 1 + first_row  # B x T, meaningful where needed
    sbo_rows = sbo_targets = None
    if pairs is not None:
        sbo_rows = torch.stack([out_row[sample, left], out_row[sample, right], index], dim=1)  # S x 3
        sbo_targets = pair_targets[sample, span, index]
    padded = bool(src_tokens.eq(pad).any())
    return HeadRows(padded, positions, out_row[masked], sbo_rows, target[masked], sbo_targets)
