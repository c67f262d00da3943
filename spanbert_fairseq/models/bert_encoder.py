"""BERT's encoder, with HuggingFace `BertModel`'s module names so its state dict loads key for key.

Post-LayerNorm Transformer: word + learned absolute position (from 0) + token-type embeddings,
embedding LayerNorm, GeLU (erf form), LayerNorm eps 1e-12. Attention runs through
`F.scaled_dot_product_attention`, so a GPU picks a flash / memory-efficient kernel.
Attribute names (`LayerNorm`, `attention.self`, `intermediate`, ...) are HuggingFace's on purpose:
they are the state-dict keys that docs/DESIGN.md fixes.
"""

import torch
import torch.nn.functional as F
from fairseq.modules import LayerNorm
from torch import nn


class BertEmbeddings(nn.Module):
    def __init__(self, vocab_size, dim, max_positions, type_vocab_size, padding_idx, eps, dropout):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)
        self.position_embeddings = nn.Embedding(max_positions, dim)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, dim)
        self.LayerNorm = LayerNorm(dim, eps=eps)
        self.dropout = nn.Dropout(dropout)

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

    def forward(self, x, attn_mask):  # x: B x T x C; attn_mask: B x 1 x 1 x T bool (True = attend) or None
        B, T, C = x.shape

        def split_heads(t):  # B x T x C -> B x heads x T x C/heads
            return t.view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2)

        q, k, v = split_heads(self.query(x)), split_heads(self.key(x)), split_heads(self.value(x))
        dropout_p = self.attention_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        return y.transpose(1, 2).reshape(B, T, C)


class BertResidualOutput(nn.Module):
    """dense -> dropout -> LayerNorm(. + residual): HF's BertSelfOutput and BertOutput."""

    def __init__(self, in_dim, dim, eps, dropout):
        super().__init__()
        self.dense = nn.Linear(in_dim, dim)
        self.LayerNorm = LayerNorm(dim, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, dim, num_heads, eps, dropout, attention_dropout):
        super().__init__()
        # `self.self` is HF's name: the keys are `attention.self.{query,key,value}`.
        self.self = BertSelfAttention(dim, num_heads, attention_dropout)
        self.output = BertResidualOutput(dim, dim, eps, dropout)

    def forward(self, x, attn_mask):
        return self.output(self.self(x, attn_mask), x)


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

    def forward(self, x, attn_mask):
        x = self.attention(x, attn_mask)
        return self.output(self.intermediate(x), x)


class BertLayerStack(nn.Module):
    def __init__(self, num_layers, **layer_kwargs):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(**layer_kwargs) for _ in range(num_layers)])

    def forward(self, x, attn_mask):
        for layer in self.layer:
            x = layer(x, attn_mask)
        return x


class BertBody(nn.Module):
    """HF `BertModel` without the pooler: `embeddings.*` and `encoder.layer.{i}.*`."""

    def __init__(self, vocab_size, padding_idx, num_layers, dim, ffn_dim, num_heads,
                 max_positions, type_vocab_size, eps, dropout, attention_dropout):
        super().__init__()
        self.padding_idx = padding_idx
        self.embeddings = BertEmbeddings(
            vocab_size, dim, max_positions, type_vocab_size, padding_idx, eps, dropout
        )
        self.encoder = BertLayerStack(
            num_layers, dim=dim, ffn_dim=ffn_dim, num_heads=num_heads, eps=eps,
            dropout=dropout, attention_dropout=attention_dropout,
        )

    def forward(self, src_tokens, attn_mask, token_types=None):  # B x T -> B x T x C
        return self.encoder(self.embeddings(src_tokens, token_types), attn_mask)

    def attention_mask(self, src_tokens):
        """B x 1 x 1 x T bool, True at real tokens; None when nothing is padded.

        None lets SDPA use its flash kernel. The `.any()` is one host sync, taken before any
        kernel of the step is queued, so it stalls nothing.
        """
        is_token = src_tokens.ne(self.padding_idx)
        if bool(is_token.all()):
            return None
        return is_token[:, None, None, :]


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
