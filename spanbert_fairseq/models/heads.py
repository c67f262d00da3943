"""The two pretraining heads (BERT's MLM head, SpanBERT's span boundary objective (SBO) head) and
the fine-tuning heads of `SpanBertModel.classification_heads` (docs/DESIGN.md, "Heads").

Each pretraining head maps the rows it is given (the masked positions, the SBO targets; never the whole
sequence) to hidden states; `project_to_vocabulary` turns both heads' states into logits through
the word embedding matrix (tied, so the state dict holds no copy of it: docs/DESIGN.md), each head
with its own output bias.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import LayerNorm  # torch's own, never apex's (models/bert_encoder.py)

from .bert_encoder import init_bert_weights
from .dropout import Dropout


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


class SentenceClassificationHead(nn.Module):
    """BERT's pooler on [CLS] (dense, tanh), dropout, `out_proj`: HF `bert.pooler.dense` + `classifier`."""

    kind = "sentence"

    def __init__(self, dim, inner_dim, num_classes, dropout):
        super().__init__()
        self.dense = nn.Linear(dim, inner_dim)
        self.dropout = Dropout(dropout)
        self.out_proj = nn.Linear(inner_dim, num_classes)
        self.apply(init_bert_weights)

    def forward(self, features):  # B x T x C -> B x num_classes
        return self.out_proj(self.dropout(torch.tanh(self.dense(features[:, 0]))))


class SpanHead(nn.Module):
    """Start and end logits at every position: `out_proj` (C -> 2), HF `qa_outputs`."""

    kind = "span"

    def __init__(self, dim):
        super().__init__()
        self.out_proj = nn.Linear(dim, 2)
        self.apply(init_bert_weights)

    def forward(self, features):  # B x T x C -> B x T x 2
        return self.out_proj(features)


def build_fine_tuning_head(kind, dim, num_classes, inner_dim, dropout):
    """The head `register_classification_head` asked for; ValueError for a size the kind cannot take."""
    if kind == "sentence":
        if num_classes is None:
            raise ValueError("a sentence head needs num_classes")
        return SentenceClassificationHead(dim, inner_dim or dim, num_classes, dropout)
    if kind == "span":
        if num_classes not in (None, 2) or inner_dim not in (None, dim):
            raise ValueError(f"a span head has 2 outputs (start, end) on the hidden size {dim}; "
                             f"got num_classes={num_classes}, inner_dim={inner_dim}")
        return SpanHead(dim)
    raise ValueError(f"unknown head kind {kind!r}: 'sentence' or 'span'")


def head_sizes(head):
    """(kind, num_classes, inner_dim) of a registered head, as `checkpoint_head_sizes` reads them."""
    inner_dim = head.dense.out_features if head.kind == "sentence" else None
    return head.kind, head.out_proj.out_features, inner_dim


def checkpoint_head_sizes(state_dict, prefix):
    """{name: (kind, num_classes, inner_dim)} of the heads under `prefix` + "classification_heads."."""
    root = prefix + "classification_heads."
    sizes = {}
    for key in state_dict:
        if key.startswith(root) and key.endswith(".out_proj.weight"):
            name = key[len(root): -len(".out_proj.weight")]
            dense = state_dict.get(f"{root}{name}.dense.weight")
            kind = "span" if dense is None else "sentence"
            sizes[name] = (kind, state_dict[key].size(0), None if dense is None else dense.size(0))
    return sizes
