"""spanbert-export: transformers loads the export, outputs match fairseq's, round trips are exact."""

import pytest
import torch
from safetensors.torch import load_file

from spanbert_fairseq import SpanBertModel
from spanbert_fairseq.data.head_rows import head_rows
from spanbert_fairseq.interop.bert_layout import SBO_FILE, canonicalize
from spanbert_fairseq.interop.export_checkpoint import export_checkpoint
from spanbert_fairseq.interop.import_checkpoint import import_checkpoint

SENTENCES = ["The cat sat on the mat.", "Spans of whole words are masked together in SpanBERT."]


@pytest.fixture(scope="module")
def exported_minilm(imported_minilm, tmp_path_factory):
    directory, _ = imported_minilm
    out = tmp_path_factory.mktemp("minilm_hf")
    return out, export_checkpoint(directory / "model.pt", out)


def _load(cls_name, directory):
    import transformers

    cls = getattr(transformers, cls_name)
    model, info = cls.from_pretrained(str(directory), output_loading_info=True)
    return model.eval(), info


def _ours(keys):
    """The keys that belong to the encoder or the MLM head (not pooler, NSP, task heads)."""
    return {k for k in keys if k.startswith(("bert.embeddings", "bert.encoder", "cls.predictions"))}


@pytest.mark.parametrize("cls_name", ["AutoModel", "BertForMaskedLM", "BertForQuestionAnswering"])
def test_transformers_loads_the_export_with_no_encoder_or_mlm_key_missing(exported_minilm, cls_name):
    model, info = _load(cls_name, exported_minilm[0])
    assert not _ours(info["missing_keys"]) and not info["mismatched_keys"]
    expected_unused = {"AutoModel": {"cls."}, "BertForMaskedLM": {"bert.pooler."},
                       "BertForQuestionAnswering": {"cls.", "bert.pooler."}}[cls_name]
    assert all(k.startswith(tuple(expected_unused)) for k in info["unexpected_keys"])
    if cls_name == "BertForMaskedLM":
        assert not _ours(info["unexpected_keys"])
    if cls_name == "BertForQuestionAnswering":
        assert set(info["missing_keys"]) == {"qa_outputs.weight", "qa_outputs.bias"}


def test_export_outputs_equal_fairseq(imported_minilm, exported_minilm):
    hub = SpanBertModel.from_pretrained(imported_minilm[0], checkpoint_file="model.pt")
    bert, _ = _load("BertModel", exported_minilm[0])
    mlm, _ = _load("BertForMaskedLM", exported_minilm[0])
    tokens = [hub.encode(s) for s in SENTENCES]
    batch = torch.full((len(tokens), max(map(len, tokens))), hub.dictionary.pad())
    for row, t in zip(batch, tokens):
        row[: len(t)] = t
    is_token = batch.ne(hub.dictionary.pad())

    with torch.no_grad():
        features = bert(input_ids=batch, attention_mask=is_token.long()).last_hidden_state
        logits = mlm(input_ids=batch, attention_mask=is_token.long()).logits
        our_logits, _ = hub.model(batch, **head_rows(batch, batch, hub.dictionary.pad()).net_input())
    assert (features - hub.extract_features(batch))[is_token].abs().max() < 1e-5
    # Logits are sums over the hidden size of values of order 10: 1e-5 relative, 1e-5 absolute
    # (measured: 7e-6 max abs on this CPU).
    torch.testing.assert_close(our_logits, logits[is_token], rtol=1e-5, atol=1e-5)


def test_round_trip_reproduces_every_tensor_bit_exactly(minilm_dir, exported_minilm, tmp_path):
    source = canonicalize(load_file(str(minilm_dir / "model.safetensors")))
    source.pop("bert.embeddings.position_ids")  # a buffer (arange), not a weight; HF recomputes it
    exported = load_file(str(exported_minilm[0] / "model.safetensors"))
    assert set(source) <= set(exported)
    assert all(torch.equal(exported[k], v) and exported[k].dtype == v.dtype for k, v in source.items())

    # span_bert -> HF -> span_bert -> HF: the second export equals the first, SBO head included.
    import_checkpoint(exported_minilm[0], tmp_path / "again")
    export_checkpoint(tmp_path / "again" / "model.pt", tmp_path / "hf")
    for name in ("model.safetensors", SBO_FILE):
        first, second = load_file(str(exported_minilm[0] / name)), load_file(str(tmp_path / "hf" / name))
        assert first.keys() == second.keys()
        assert all(torch.equal(first[k], second[k]) for k in first)
    assert (tmp_path / "hf" / "config.json").read_text() == (exported_minilm[0] / "config.json").read_text()


def test_exported_tokenizer_gives_the_source_tokenizers_ids(minilm_dir, exported_minilm):
    import transformers

    source = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    ours = transformers.AutoTokenizer.from_pretrained(str(exported_minilm[0]))
    for sentence in SENTENCES + ["Naïve CAFÉ owners, [MASK] included."]:
        assert ours(sentence)["input_ids"] == source(sentence)["input_ids"]


def test_summary_names_every_file(exported_minilm):
    out, report = exported_minilm
    summary = report.summary()
    for name in ("config.json", "model.safetensors", SBO_FILE, "vocab.txt", "tokenizer.json"):
        assert name in summary and (out / name).exists()
