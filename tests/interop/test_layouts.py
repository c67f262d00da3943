"""Every layout spanbert-import reads, built from one tiny random BERT: each tensor lands in place."""

import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from spanbert_fairseq import SpanBertModel
from spanbert_fairseq.interop import span_bert_checkpoint as ckpt
from spanbert_fairseq.interop.bert_layout import SBO_FILE, canonicalize, span_bert_name
from spanbert_fairseq.interop.export_checkpoint import export_checkpoint
from spanbert_fairseq.interop.import_checkpoint import import_checkpoint

_spec = importlib.util.spec_from_file_location("_synthetic", Path(__file__).with_name("synthetic.py"))
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)


def _assert_imported(checkpoint, hf_state):
    """Every tensor of `hf_state` span_bert has a place for is bit-equal in the checkpoint."""
    _, model_state, carried = ckpt.load_checkpoint(checkpoint)
    placed = 0
    for name, tensor in canonicalize(hf_state).items():
        key = span_bert_name(name)
        if key is not None:
            assert torch.equal(model_state[key], tensor), name
            placed += 1
        elif name in carried:
            assert torch.equal(carried[name], tensor), name
    return placed, model_state, carried


BIN, SAFETENSORS = "pytorch_model.bin", "model.safetensors"
LAYOUTS = {
    # name: (hf_layout options, weights file)
    "bert-prefix, pooler, heads, safetensors": (dict(), SAFETENSORS),
    "bare BertModel, gamma/beta, pytorch_model.bin": (dict(bert_prefix=False, gamma_beta=True), BIN),
    "bert-prefix, gamma/beta, no pooler, heads, .bin": (dict(gamma_beta=True, pooler=False), BIN),
    "released SpanBERT: bert-prefix, no pooler, no heads": (dict(pooler=False, heads=False), BIN),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_hf_layouts(tiny_bert, tmp_path, layout):
    options, weights = LAYOUTS[layout]
    state, config = tiny_bert
    source = synthetic.hf_layout(state, **options)
    synthetic.write_hf_dir(tmp_path / "src", source, config, weights=weights)
    report = import_checkpoint(tmp_path / "src", tmp_path / "out")

    placed, _, carried = _assert_imported(report.checkpoint, source)
    has_heads = options.get("heads", True) and options.get("bert_prefix", True)
    assert report.loaded_heads == (["MLM head"] if has_heads else [])
    assert report.fresh_heads == (["SBO head"] if has_heads else ["MLM head", "SBO head"])
    has_pooler = options.get("pooler", True)
    assert bool(carried) == has_pooler
    assert placed == 2 * 16 + 5 + (5 if has_heads else 0)  # 16 per layer, 5 embedding, 5 MLM head


def test_weights_file_given_directly(tiny_bert, tmp_path):
    state, config = tiny_bert
    synthetic.write_hf_dir(tmp_path / "src", state, config, weights="pytorch_model.bin")
    report = import_checkpoint(tmp_path / "src" / "pytorch_model.bin", tmp_path / "out")
    assert report.source == tmp_path / "src" / "pytorch_model.bin"


def test_sbo_side_file_is_restored(tiny_bert, tmp_path):
    state, config = tiny_bert
    sbo = synthetic.random_sbo_head()
    synthetic.write_hf_dir(tmp_path / "src", state, config)
    save_file(sbo, str(tmp_path / "src" / SBO_FILE))
    report = import_checkpoint(tmp_path / "src", tmp_path / "out")
    assert report.loaded_heads == ["MLM head", "SBO head"] and report.fresh_heads == []
    assert report.model_args["max_pair_targets"] == synthetic.SBO_TARGETS
    assert report.model_args["sbo_position_dim"] == synthetic.SBO_POSITION_DIM
    _assert_imported(report.checkpoint, {**state, **sbo})


def test_authors_fairseq06_checkpoint_with_heads(tiny_bert, tmp_path):
    """decoder.* keys, gamma/beta, tied decoders, a pickled class this install lacks, legacy format."""
    state, config = tiny_bert
    embeddings = state["bert.embeddings.word_embeddings.weight"]
    source = {**synthetic.hf_layout(state, pooler=False), **synthetic.random_sbo_head(),
              "cls.pair_target_predictions.decoder.weight": embeddings}
    source.pop("cls.predictions.decoder.bias")  # their BertLMPredictionHead had no decoder bias
    path = synthetic.write_fairseq06_checkpoint(tmp_path / "model.pt", source, config)
    vocab = synthetic.write_vocab(tmp_path / "bert-cased-vocab.txt")

    report = import_checkpoint(path, tmp_path / "out", vocab=vocab)
    assert report.source_kind == "fairseq-0.6 SpanBERT"
    assert report.loaded_heads == ["MLM head", "SBO head"] and report.fresh_heads == []
    assert report.model_args["max_pair_targets"] == synthetic.SBO_TARGETS
    placed, _, carried = _assert_imported(report.checkpoint, source)
    assert placed == 2 * 16 + 5 + 5 + 10 and not carried

    # The hub gives transformers' BertModel outputs on the same weights (gamma/beta mapped right).
    import transformers

    bert = transformers.BertModel(transformers.BertConfig(**config), add_pooling_layer=False).eval()
    bert.load_state_dict({k[len("bert."):]: v for k, v in state.items()
                          if k.startswith("bert.") and ".pooler." not in k})
    hub = SpanBertModel.from_pretrained(tmp_path / "out", checkpoint_file="model.pt")
    tokens = torch.tensor([[2, 40, 41, 7, 8, 42, 3]])
    with torch.no_grad():
        assert (hub.extract_features(tokens) - bert(tokens).last_hidden_state).abs().max() < 1e-5


def test_export_then_import_restores_both_heads(tiny_bert, tmp_path):
    state, config = tiny_bert
    synthetic.write_hf_dir(tmp_path / "src", state, config)
    save_file(synthetic.random_sbo_head(), str(tmp_path / "src" / SBO_FILE))
    first = import_checkpoint(tmp_path / "src", tmp_path / "sb1")
    export_checkpoint(first.checkpoint, tmp_path / "hf")
    second = import_checkpoint(tmp_path / "hf", tmp_path / "sb2")
    _, a, carried_a = ckpt.load_checkpoint(first.checkpoint)
    _, b, carried_b = ckpt.load_checkpoint(second.checkpoint)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert carried_a.keys() == carried_b.keys() == {
        "bert.pooler.dense.weight", "bert.pooler.dense.bias",
        "cls.seq_relationship.weight", "cls.seq_relationship.bias",
    }
    sbo = load_file(str(tmp_path / "hf" / SBO_FILE))
    assert sbo.keys() == synthetic.random_sbo_head().keys()
    assert (tmp_path / "hf" / "vocab.txt").read_text().split("\n")[:-1] == synthetic.TINY_VOCAB
