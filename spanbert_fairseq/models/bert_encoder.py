"""BERT's encoder, with HuggingFace `BertModel`'s module names so its state dict loads key for key.

Post-LayerNorm Transformer: word + learned absolute position (from 0) + token-type embeddings,
embedding LayerNorm, GeLU (erf form), LayerNorm eps 1e-12. Attention runs through
`F.scaled_dot_product_attention`, so a GPU picks a flash / memory-efficient kernel; CPU training
draws its dropout masks through `dropout.py`. LayerNorm is torch's own on every host: fairseq's
`LayerNorm` becomes apex's fused kernel wherever apex imports, which computes in bf16 under autocast
and has no guard for zero rows.
Attribute names (`LayerNorm`, `attention.self`, `intermediate`, ...) are HuggingFace's on purpose:
they are the state-dict keys that docs/DESIGN.md fixes.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import LayerNorm
from torch.utils.checkpoint import checkpoint

from .dropout import Dropout, attention


class BertEmbeddings(nn.Module):
    def __init__(self, vocab_size, dim, max_positions, type_vocab_size, padding_idx, eps, dropout):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)
        self.position_embeddings = nn.Embedding(max_positions, dim)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, dim)
        self.LayerNorm = LayerNorm(dim, eps=eps)
        self.dropout = Dropout(dropout)

    def forward(self, src_tokens, token_types=None):  # B x T (, B x T) -> B x T x C
        seq_len = src_tokens.size(1)
        # SpanBERT trains on one segment: token type 0 everywhere, row 0 added to every position.
        # BERT's sentence pairs (the hub's encode(a, b)) pass their segment ids.
        if token_types is None:
            types = self.token_type_embeddings.weight[0]
        else:
            types = self.token_type_embeddings(token_types)
        x = self.word_embeddings(src_tokens) + self.position_embeddings.weight[:seq_len] + types
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, dim, num_heads, attention_dropout):
        super().__init__()
        assert dim % num_heads == 0, f"hidden size {dim} is not a multiple of {num_heads} heads"
        self.num_heads = num_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.attention_dropout = attention_dropout

    def forward(self, x, attn_mask, query_x=None):
        """x: B x T x C -> B x R x C, one output per query row: query_x (B x R x C, some of x's
        positions) or, when None, every position of x.

        attn_mask: B x 1 x 1 x T bool (True = attend) or None. Keys and values come from every
        position of x.
        """
        B, T, C = x.shape

        def split_heads(t):  # B x N x C -> B x heads x N x C/heads
            return t.view(B, t.size(1), self.num_heads, C // self.num_heads).transpose(1, 2)

        if query_x is None:
            q, k, v = fused_linear(x, self.query, self.key, self.value)
        else:
            q = self.query(query_x)
            k, v = fused_linear(x, self.key, self.value)
        q, k, v = split_heads(q), split_heads(k), split_heads(v)
        dropout_p = self.attention_dropout if self.training else 0.0
        y = attention(q, k, v, attn_mask, dropout_p)
        return y.transpose(1, 2).reshape(B, -1, C)


class BertResidualOutput(nn.Module):
    """dense -> dropout -> LayerNorm(. + residual): HF's BertSelfOutput and BertOutput."""

    def __init__(self, in_dim, dim, eps, dropout):
        super().__init__()
        self.dense = nn.Linear(in_dim, dim)
        self.LayerNorm = LayerNorm(dim, eps=eps)
        self.dropout = Dropout(dropout)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, dim, num_heads, eps, dropout, attention_dropout):
        super().__init__()
        # `self.self` is HF's name: the keys are `attention.self.{query,key,value}`.
        self.self = BertSelfAttention(dim, num_heads, attention_dropout)
        self.output = BertResidualOutput(dim, dim, eps, dropout)

    def forward(self, x, attn_mask, rows=None):  # B x T x C -> B x R x C
        if rows is None:
            return self.output(self.self(x, attn_mask), x)
        # The rows' states are both the queries' input and the residual: gathered once.
        x_rows = gather_positions(x, rows)
        return self.output(self.self(x, attn_mask, x_rows), x_rows)


class BertIntermediate(nn.Module):
    def __init__(self, dim, ffn_dim):
        super().__init__()
        self.dense = nn.Linear(dim, ffn_dim)

    def forward(self, x):
        return F.gelu(self.dense(x))  # erf form, as BERT


class BertLayer(nn.Module):
    def __init__(self, dim, ffn_dim, num_heads, eps, dropout, attention_dropout):
        super().__init__()
        self.attention = BertAttention(dim, num_heads, eps, dropout, attention_dropout)
        self.intermediate = BertIntermediate(dim, ffn_dim)
        self.output = BertResidualOutput(ffn_dim, dim, eps, dropout)

    def forward(self, x, attn_mask, rows=None):  # B x T x C -> B x R x C
        x = self.attention(x, attn_mask, rows)
        return self.output(self.intermediate(x), x)


class BertLayerStack(nn.Module):
    def __init__(self, num_layers, checkpoint_activations=False, **layer_kwargs):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(**layer_kwargs) for _ in range(num_layers)])
        self.checkpoint_activations = checkpoint_activations

    def forward(self, x, attn_mask, rows=None, hidden_states=None):  # B x T x C -> B x R x C
        """hidden_states: a list that receives every layer's output, when given."""
        # Every position of the last layer's input feeds its attention, but its output is needed
        # only at `rows`: from the queries on (output projection, FFN) it runs on those alone.
        last = len(self.layer) - 1
        recompute = self.checkpoint_activations and torch.is_grad_enabled()
        for i, layer in enumerate(self.layer):
            layer_rows = rows if i == last else None
            if recompute:
                # The backward reruns the layer with torch's RNG state as it was (preserve_rng_state),
                # so dropout.py's masks, seeded from torch's generator, come out the same.
                x = checkpoint(layer, x, attn_mask, layer_rows, use_reentrant=False, preserve_rng_state=True)
            else:
                x = layer(x, attn_mask, layer_rows)
            if hidden_states is not None:
                hidden_states.append(x)
        return x


class BertBody(nn.Module):
    """HF `BertModel` without the pooler: `embeddings.*` and `encoder.layer.{i}.*`."""

    def __init__(self, vocab_size, padding_idx, num_layers, dim, ffn_dim, num_heads,
                 max_positions, type_vocab_size, eps, dropout, attention_dropout, checkpoint_activations=False):
        super().__init__()
        self.padding_idx = padding_idx
        self.embeddings = BertEmbeddings(
            vocab_size, dim, max_positions, type_vocab_size, padding_idx, eps, dropout
        )
        self.encoder = BertLayerStack(
            num_layers, checkpoint_activations, dim=dim, ffn_dim=ffn_dim, num_heads=num_heads, eps=eps,
            dropout=dropout, attention_dropout=attention_dropout,
        )

    def forward(self, src_tokens, attn_mask, rows=None, token_types=None, hidden_states=None):
        """B x T -> B x R x C: the last layer at positions `rows` (B x R), or B x T x C when None.
        token_types: B x T segment ids for BERT's sentence pairs (default: all 0).
        hidden_states: a list that receives the embedding output and every layer's, when given."""
        x = self.embeddings(src_tokens, token_types)
        if hidden_states is not None:
            hidden_states.append(x)
        return self.encoder(x, attn_mask, rows, hidden_states)

    def attention_mask(self, src_tokens):
        """B x 1 x 1 x T bool, True at real tokens.

        Always built: asking whether anything is padded would wait for the device. A batch that
        knows it has no padding (the collater's `padded`) passes None instead, for SDPA's
        mask-free kernels.
        """
        return src_tokens.ne(self.padding_idx)[:, None, None, :]


def fused_linear(x, *linears):
    """Linear layers of the same input as one GEMM: ... x C -> one ... x out_features per layer.

    The weights are concatenated at each call (a copy of a few MB), so every layer keeps its own
    parameters and HF's state-dict names.
    """
    weight = torch.cat([linear.weight for linear in linears])
    bias = torch.cat([linear.bias for linear in linears])
    return F.linear(x, weight, bias).split([linear.out_features for linear in linears], dim=-1)


def gather_positions(x, rows):  # B x T x C, B x R -> B x R x C
    # gather, not take_along_dim: its broadcasting makes torch.compile fix B and T to constants.
    return torch.gather(x, 1, rows.unsqueeze(-1).expand(-1, -1, x.size(-1)))


def init_bert_weights(module, std=0.02):
    """BERT's initialisation: N(0, 0.02) weights, zero biases, zero padding row (LayerNorms start at 1/0)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()


def bert_token_types(tokens, sep, pad):
    """B x T ids -> B x T BERT segment ids: 0 up to and including a row's first [SEP], 1 after it,
    0 at padding (`[CLS] a [SEP] b [SEP]` -> 0 for [CLS] a [SEP], 1 for b [SEP])."""
    is_sep = tokens.eq(sep).long()
    after_first_sep = is_sep.cumsum(-1) - is_sep
    return (after_first_sep > 0).long() * tokens.ne(pad).long()
