"""The span_bert model: HF BERT's function, DESIGN's state-dict keys, heads on selected rows only."""

import pytest
import torch
import torch.nn.functional as F

from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.data.head_rows import head_rows
from spanbert_fairseq.models.span_bert import SpanBertEncoder, SpanBertModel, SpanBertModelConfig
from spanbert_text.errors import UserInputError

TINY = dict(encoder_layers=2, encoder_embed_dim=64, encoder_ffn_embed_dim=128, encoder_attention_heads=4,
            max_pair_targets=15)


@pytest.fixture(scope="module")
def dictionary(bert_vocab):
    return BertDictionary.load(str(bert_vocab))


def tiny_model(dictionary, **overrides):
    cfg = SpanBertModelConfig(**{**TINY, **overrides})
    return SpanBertModel(cfg, SpanBertEncoder(cfg, dictionary))


def padded_batch(dictionary, lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.full((len(lengths), max(lengths)), dictionary.pad())
    for i, n in enumerate(lengths):
        tokens[i, :n] = torch.randint(1000, len(dictionary), (n,), generator=g)
        tokens[i, 0], tokens[i, n - 1] = dictionary.cls(), dictionary.sep()
    return tokens


def test_encoder_matches_huggingface_bert_with_padding(dictionary):
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.BertConfig(
        vocab_size=len(dictionary), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=512, pad_token_id=dictionary.pad(),
    )
    torch.manual_seed(0)
    hf = transformers.BertModel(hf_config, add_pooling_layer=False).eval()
    # Random LayerNorm affine parameters too, so a swapped weight/bias would show.
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "LayerNorm" in name:
                p.normal_(mean=1.0 if name.endswith("weight") else 0.0, std=0.1)
    model = tiny_model(dictionary).eval()
    missing, unexpected = model.load_state_dict(
        {f"encoder.bert.{k}": v for k, v in hf.state_dict().items()}, strict=False
    )
    assert unexpected == []
    assert all(k.startswith(("encoder.mlm_head.", "encoder.sbo_head.")) for k in missing)

    tokens = padded_batch(dictionary, [37, 20, 5])
    is_token = tokens.ne(dictionary.pad())
    with torch.no_grad():
        expected = hf(input_ids=tokens, attention_mask=is_token.long()).last_hidden_state
        actual = model.extract_features(tokens)
    torch.testing.assert_close(actual[is_token], expected[is_token], atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_features(dictionary):
    model = tiny_model(dictionary).eval()
    tokens = padded_batch(dictionary, [12])
    padded = F.pad(tokens, (0, 9), value=dictionary.pad())
    with torch.no_grad():
        torch.testing.assert_close(
            model.extract_features(padded)[:, :12], model.extract_features(tokens), atol=1e-5, rtol=1e-5
        )


def design_keys(num_layers):
    """The state-dict keys docs/DESIGN.md promises."""
    bert = [
        "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
    ]
    for i in range(num_layers):
        for module in ["attention.self.query", "attention.self.key", "attention.self.value",
                       "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                       "output.dense", "output.LayerNorm"]:
            bert += [f"encoder.layer.{i}.{module}.weight", f"encoder.layer.{i}.{module}.bias"]
    heads = ["mlm_head.dense.weight", "mlm_head.dense.bias", "mlm_head.layer_norm.weight",
             "mlm_head.layer_norm.bias", "mlm_head.bias", "sbo_head.position_embeddings.weight", "sbo_head.bias"]
    for part in ["linear1", "layer_norm1", "linear2", "layer_norm2"]:
        heads += [f"sbo_head.mlp.{part}.weight", f"sbo_head.mlp.{part}.bias"]
    return {f"encoder.bert.{k}" for k in bert} | {f"encoder.{k}" for k in heads}


def test_state_dict_keys_and_shapes_follow_design(dictionary):
    model = tiny_model(dictionary)
    state = model.state_dict()
    assert set(state) == design_keys(2)
    V, H = len(dictionary), TINY["encoder_embed_dim"]
    assert state["encoder.sbo_head.position_embeddings.weight"].shape == (15, 200)
    assert state["encoder.sbo_head.mlp.linear1.weight"].shape == (H, 2 * H + 200)
    assert state["encoder.mlm_head.bias"].shape == state["encoder.sbo_head.bias"].shape == (V,)
    assert state["encoder.bert.embeddings.position_embeddings.weight"].shape == (512, H)


def test_heads_use_the_tied_embedding_and_only_selected_rows(dictionary):
    model = tiny_model(dictionary).eval()
    with torch.no_grad():  # non-zero biases so each head's own bias is checked
        model.encoder.mlm_head.bias.normal_()
        model.encoder.sbo_head.bias.normal_()
    tokens = padded_batch(dictionary, [16, 11])
    masked = torch.zeros_like(tokens, dtype=torch.bool)
    masked[0, [3, 4, 5]] = masked[1, [7]] = True
    # Sample 0: one span 3..5 (boundaries 2 and 6); sample 1: span 7 (boundaries 6, 8), one padding row.
    pairs = torch.tensor([[[2, 6], [0, 0]], [[6, 8], [0, 0]]])
    pair_targets = torch.full((2, 2, 15), dictionary.pad())
    pair_targets[0, 0, :3] = pair_targets[1, 0, :1] = 1000
    rows = head_rows(tokens, tokens.masked_fill(~masked, dictionary.pad()), dictionary.pad(), pairs, pair_targets)

    with torch.no_grad():
        mlm_logits, sbo_logits = model(tokens, **rows.net_input())
        features = model.extract_features(tokens)
        enc = model.encoder
        W = enc.bert.embeddings.word_embeddings.weight
        expected_mlm = F.linear(enc.mlm_head(features[masked]), W, enc.mlm_head.bias)
        h = []
        for b, k, i in [(0, 0, 0), (0, 0, 1), (0, 0, 2), (1, 0, 0)]:
            left, right = features[b, pairs[b, k, 0]], features[b, pairs[b, k, 1]]
            h.append(torch.cat([left, right, enc.sbo_head.position_embeddings.weight[i]]))
        expected_sbo = F.linear(enc.sbo_head.mlp(torch.stack(h)), W, enc.sbo_head.bias)
    assert mlm_logits.shape == (4, len(dictionary)) and sbo_logits.shape == (4, len(dictionary))
    torch.testing.assert_close(mlm_logits, expected_mlm)
    torch.testing.assert_close(sbo_logits, expected_sbo)

    model.train()
    mlm_logits, sbo_logits = model(tokens, **rows.net_input())
    (mlm_logits.sum() + sbo_logits.sum()).backward()
    assert W.grad is not None and W.grad.abs().sum() > 0


def test_empty_masks_give_empty_logits(dictionary):
    model = tiny_model(dictionary)
    tokens = padded_batch(dictionary, [8])
    pad = dictionary.pad()
    rows = head_rows(tokens, torch.full_like(tokens, pad), pad, torch.zeros(1, 0, 2, dtype=torch.long),
                     torch.full((1, 0, 15), pad))
    mlm_logits, sbo_logits = model(tokens, **rows.net_input())
    assert mlm_logits.shape == sbo_logits.shape == (0, len(dictionary))
    assert model(tokens) == (None, None)  # no masks, no heads


@pytest.mark.parametrize("arch,sizes", [
    ("spanbert_base", (12, 768, 3072, 12)),
    ("spanbert_large", (24, 1024, 4096, 16)),
    ("spanbert_tiny", (2, 128, 512, 2)),
])
def test_architectures(arch, sizes):
    from argparse import Namespace

    from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_REGISTRY

    assert ARCH_MODEL_REGISTRY[arch] is SpanBertModel
    args = Namespace()
    ARCH_CONFIG_REGISTRY[arch](args)
    got = (args.encoder_layers, args.encoder_embed_dim, args.encoder_ffn_embed_dim, args.encoder_attention_heads)
    assert got == sizes


@pytest.mark.parametrize("flag, value", [("dropout", -0.1), ("dropout", 1.0), ("attention_dropout", 1.5)])
def test_a_dropout_outside_zero_to_one_is_refused_with_its_flag(dictionary, flag, value):
    cfg = SpanBertModelConfig(**{**TINY, flag: value})
    with pytest.raises(UserInputError, match=rf"--{flag.replace('_', '-')} must lie in \[0, 1\), got {value}$"):
        SpanBertModel.for_dictionary(cfg, dictionary)


def test_a_batch_without_sbo_targets_trains_every_parameter(bert_dictionary, tiny_model_and_criterion):
    # Blocks of one token: the only span touches both block edges, so no SBO pair. The SBO head
    # still runs (on zero rows), so every parameter gets a gradient and DDP without
    # find_unused_parameters sees the same parameters on every rank.
    from spanbert_fairseq.data.span_masked_dataset import collate_span_batch

    d = bert_dictionary
    items = [{"id": i, "source": torch.tensor([d.mask()]), "target": torch.tensor([1000 + i]),
              "pairs": torch.zeros(0, 2, dtype=torch.long), "pair_targets": torch.zeros(0, 15, dtype=torch.long)}
             for i in range(2)]
    batch = collate_span_batch(items, d.pad(), d.cls(), d.sep(), 15)
    assert len(batch["sbo_targets"]) == 0 and len(batch["mlm_targets"]) == 2
    model, criterion = tiny_model_and_criterion()
    loss, _, log = criterion(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and log["sbo_targets"] == 0
    assert [name for name, p in model.named_parameters() if p.grad is None] == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_every_layer_norm_is_torchs_even_where_apex_is_installed(dictionary, monkeypatch):
    # fairseq.modules.LayerNorm returns apex's FusedLayerNorm on a CUDA host with apex: its
    # results depend on the host (bf16 under autocast, no zero-row guard). Here that host is faked.
    from fairseq.modules import layer_norm

    class FakeFusedLayerNorm(torch.nn.LayerNorm):
        pass

    monkeypatch.setattr(layer_norm, "has_fused_layernorm", True, raising=False)
    monkeypatch.setattr(layer_norm, "FusedLayerNorm", FakeFusedLayerNorm, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    norms = {name: type(m) for name, m in tiny_model(dictionary).named_modules()
             if isinstance(m, torch.nn.LayerNorm)}
    assert len(norms) == 1 + 2 * 2 + 1 + 2  # embeddings, 2 per layer, MLM head, 2 in the SBO head
    assert set(norms.values()) == {torch.nn.LayerNorm}, norms
