"""Dropout whose CPU masks are drawn fast, and the attention that uses it.

aten draws a CPU dropout mask through a serial Bernoulli sampler, about 6 ns per element on the
2-core development machine, and the attention weights of a spanbert_base layer hold 6.3M elements
at batch 2 x 512. Here a CPU mask comes from numpy's PCG64 instead: 32 random bits per element,
kept when below (1 - p) * 2^32, in about a quarter of the time. That is the same distribution,
i.i.d. Bernoulli(1 - p) to within 2^-32, scaled by 1 / (1 - p) as `F.dropout` does. The generator
is seeded from torch's, so `torch.manual_seed` and fairseq's per-update seeding fix every mask as
before. A base-size training step ran about 0.91x the time it took with aten's dropout
(docs/benchmarks.md). CUDA keeps `F.dropout` and SDPA's fused kernels.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_KEEP_SCALE = 2**32  # one uint32 word per element


# An op of its own so torch.compile calls it as one opaque kernel instead of breaking its graph at
# numpy; `nondeterministic_seeded` keeps the compiler from merging two draws of the same shape.
@torch.library.custom_op(
    "spanbert::keep_mask", mutates_args=(), device_types="cpu", tags=torch.Tag.nondeterministic_seeded
)
def keep_mask(like: torch.Tensor, keep_prob: float) -> torch.Tensor:
    """A bool tensor of `like`'s shape (its values unused): each element True with probability
    keep_prob, independently."""
    seed = int(torch.randint(2**63 - 1, ()))
    count = like.numel()
    words = np.random.PCG64(seed).random_raw((count + 1) // 2).view(np.uint32)[:count]
    return torch.from_numpy(words < round(keep_prob * _KEEP_SCALE)).view(like.shape)


@keep_mask.register_fake
def _(like, keep_prob):
    return like.new_empty(like.shape, dtype=torch.bool)


def _draws_own_mask(t, p):
    """Whether the mask comes from `keep_mask`: CPU tensors, 0 < p < 1. Otherwise aten's own."""
    return t.device.type == "cpu" and 0.0 < p < 1.0


def dropout(x, p, training):
    """`F.dropout(x, p, training)`, with the CPU mask from `keep_mask`."""
    if not training or p == 0.0:
        return x
    if not _draws_own_mask(x, p):
        return F.dropout(x, p, True)
    # Autograd keeps the bool mask (1 byte per element) for the backward, as F.dropout does.
    return x * keep_mask(x, 1.0 - p) * (1.0 / (1.0 - p))


class Dropout(nn.Module):
    """`nn.Dropout` through `dropout`."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


def attention(q, k, v, attn_mask, dropout_p):
    """softmax(q k^T / sqrt(d) + mask) v with dropout on the weights, as F.scaled_dot_product_attention.

    q: B x heads x R x d; k, v: B x heads x T x d; attn_mask: B x 1 x 1 x T bool (True = attend)
    or None -> B x heads x R x d.
    """
    if not _draws_own_mask(q, dropout_p):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    # SDPA's CPU kernels take no dropout: with it SDPA runs these same composite ops, with aten's
    # slow mask.
    scores = (q * q.size(-1) ** -0.5) @ k.transpose(-2, -1)  # B x heads x R x T
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    probs = scores.softmax(-1)
    # Dropout's 1 / (1 - p) scales the output (d columns) rather than the weights (T columns).
    return (probs * keep_mask(probs, 1.0 - dropout_p)) @ v * (1.0 / (1.0 - dropout_p))
