"""The two pretraining heads: BERT's MLM head and SpanBERT's span boundary objective (SBO) head.

Each head maps the rows it is given (the masked positions, the SBO targets; never the whole
sequence) to hidden states; `project_to_vocabulary` turns both heads' states into logits through
the word embedding matrix (tied, so the state dict holds no copy of it: docs/DESIGN.md), each head
with its own output bias.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import LayerNorm  # torch's own, never apex's (models/bert_encoder.py)


class MlmHead(nn.Module):
    """BERT's `cls.predictions`: dense -> GeLU -> LayerNorm -> tied projection + bias."""

    def __init__(self, dim, vocab_size, eps):
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.layer_norm = LayerNorm(dim, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, features):  # N x C -> N x C, before the tied projection
        return self.layer_norm(F.gelu(self.dense(features)))


class MlpWithLayerNorm(nn.Module):
    """The authors' `MLPWithLayerNorm`: two (Linear -> GeLU -> LayerNorm) blocks, no dropout."""

    def __init__(self, in_dim, dim, eps):
        super().__init__()
        self.linear1 = nn.Linear(in_dim, dim)
        self.layer_norm1 = LayerNorm(dim, eps=eps)
        self.linear2 = nn.Linear(dim, dim)
        self.layer_norm2 = LayerNorm(dim, eps=eps)

    def forward(self, x):
        x = self.layer_norm1(F.gelu(self.linear1(x)))
        return self.layer_norm2(F.gelu(self.linear2(x)))


class SboHead(nn.Module):
    """Predicts span token i from [x_left ; x_right ; p_i] (docs/training.md, "Model").

    x_left / x_right are the last-layer states of the tokens just outside the span, p_i a learned
    embedding of i = the token's index within the span (0 .. max_pair_targets-1).
    """

    def __init__(self, dim, vocab_size, max_pair_targets, position_dim, eps):
        super().__init__()
        self.position_embeddings = nn.Embedding(max_pair_targets, position_dim)
        self.mlp = MlpWithLayerNorm(2 * dim + position_dim, dim, eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, left, right, span_index):  # N x C, N x C, N -> N x C, before the tied projection
        return self.mlp(torch.cat([left, right, self.position_embeddings(span_index)], dim=-1))


def project_to_vocabulary(embed_weight, heads):
    """[(rows N_i x C, bias V)] -> [logits N_i x V]: every head's rows times the tied V x C matrix."""
    if not heads:
        return []
    flat = [t for rows_and_bias in heads for t in rows_and_bias]
    return list(_TiedProjection.apply(embed_weight, *flat))


class _TiedProjection(torch.autograd.Function):
    """All heads' projections in one node, so backward sums the heads' V x C gradients into one
    buffer (addmm_) instead of allocating one per head for autograd to add up."""

    @staticmethod
    def forward(ctx, weight, *rows_and_biases):
        rows = rows_and_biases[0::2]
        ctx.save_for_backward(weight, *rows)
        return tuple(torch.addmm(bias, x, weight.t()) for x, bias in zip(rows, rows_and_biases[1::2]))

    @staticmethod
    def backward(ctx, *grad_logits):
        weight, *rows = ctx.saved_tensors
        grad_weight, grads = None, []
        for x, g in zip(rows, grad_logits):
            if g is None:  # this head's logits did not reach the loss
                grads += [None, None]
                continue
            # Under autocast the logits (so g) are half while x and weight may be fp32; autograd
            # casts each returned gradient back to its input's dtype.
            x = x.to(g.dtype)
            grad_weight = g.t() @ x if grad_weight is None else grad_weight.addmm_(g.t(), x)
            grads += [g @ weight.to(g.dtype), g.sum(0)]
        return grad_weight, *grads
