"""The two pretraining heads: BERT's MLM head and SpanBERT's span boundary objective (SBO) head.

Both project to the vocabulary through the word embedding matrix (tied): the matrix is passed to
`forward`, not stored, so the state dict has no copy of it (docs/DESIGN.md). Each head keeps its
own output bias. Both run on the rows they are given — the masked positions and the SBO targets —
never on the whole sequence.
"""

import torch
import torch.nn.functional as F
from fairseq.modules import LayerNorm
from torch import nn


class MlmHead(nn.Module):
    """BERT's `cls.predictions`: dense -> GeLU -> LayerNorm -> tied projection + bias."""

    def __init__(self, dim, vocab_size, eps):
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.layer_norm = LayerNorm(dim, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, features, embed_weight):  # N x C, V x C -> N x V
        x = self.layer_norm(F.gelu(self.dense(features)))
        return F.linear(x, embed_weight, self.bias)


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
    """Predicts span token i from [x_left ; x_right ; p_i] (SPEC section 3).

    x_left / x_right are the last-layer states of the tokens just outside the span, p_i a learned
    embedding of i = the token's index within the span (0 .. max_pair_targets-1).
    """

    def __init__(self, dim, vocab_size, max_pair_targets, position_dim, eps):
        super().__init__()
        self.position_embeddings = nn.Embedding(max_pair_targets, position_dim)
        self.mlp = MlpWithLayerNorm(2 * dim + position_dim, dim, eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, left, right, span_index, embed_weight):  # N x C, N x C, N -> N x V
        x = torch.cat([left, right, self.position_embeddings(span_index)], dim=-1)
        return F.linear(self.mlp(x), embed_weight, self.bias)
