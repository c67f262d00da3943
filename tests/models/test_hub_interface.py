"""The hub interface on a hand-made checkpoint: loading, encode/decode, features, fill_spans."""

import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from spanbert_fairseq import SpanBertModel
from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.models.span_bert import SpanBertEncoder, SpanBertModelConfig
from spanbert_text.errors import UserInputError

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = dict(encoder_layers=1, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=2,
            max_pair_targets=15)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, bert_vocab):
    """vocab.txt + a checkpoint in the layout fairseq-train writes (cfg as a plain dict)."""
    directory = tmp_path_factory.mktemp("hub")
    shutil.copy(bert_vocab, directory / "vocab.txt")
    dictionary = BertDictionary.load(str(bert_vocab))
    cfg = SpanBertModelConfig(**TINY)
    torch.manual_seed(0)
    model = SpanBertModel(cfg, SpanBertEncoder(cfg, dictionary))
    state = {
        "cfg": {"model": {**OmegaConf.to_container(OmegaConf.structured(cfg)), "_name": "spanbert_tiny"}},
        "model": model.state_dict(),
        "optimizer_history": [{"criterion_name": "SpanBertLoss", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {}, "num_updates": 0}],
        "extra_state": {"train_iterator": {"epoch": 1}},
    }
    torch.save(state, directory / "checkpoint_last.pt")
    return directory, model


def test_from_pretrained_loads_the_weights(model_dir):
    directory, model = model_dir
    hub = SpanBertModel.from_pretrained(directory, checkpoint_file="checkpoint_last.pt")
    tokens = hub.encode("Hello world, this is SpanBERT.")
    assert tokens[0] == hub.dictionary.cls() and tokens[-1] == hub.dictionary.sep()
    assert hub.decode(tokens) == "hello world, this is spanbert."  # uncased vocab: lowercased
    features = hub.extract_features(tokens)
    assert features.shape == (1, len(tokens), TINY["encoder_embed_dim"])
    with torch.no_grad():
        torch.testing.assert_close(features, model.eval().extract_features(tokens[None]))


def test_fill_spans_predicts_every_masked_token_with_both_heads(model_dir):
    hub = SpanBertModel.from_pretrained(model_dir[0], checkpoint_file="checkpoint_last.pt")
    spans = hub.fill_spans("the [MASK] [MASK] sat on the <mask> today", topk=3)
    assert len(spans) == 2
    assert [len(s["mlm_topk"]) for s in spans] == [2, 1] == [len(s["sbo_topk"]) for s in spans]
    assert all(len(row) == 3 for s in spans for row in s["mlm_topk"] + s["sbo_topk"])
    assert all(isinstance(s["mlm"], str) and isinstance(s["sbo"], str) for s in spans)
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        hub.fill_spans("nothing to fill")


def test_clear_errors_for_missing_files(model_dir, tmp_path):
    with pytest.raises(UserInputError, match="checkpoint not found"):
        SpanBertModel.from_pretrained(tmp_path, checkpoint_file="nope.pt")
    shutil.copy(model_dir[0] / "checkpoint_last.pt", tmp_path / "checkpoint_last.pt")
    with pytest.raises(UserInputError, match="no vocabulary"):
        SpanBertModel.from_pretrained(tmp_path, checkpoint_file="checkpoint_last.pt")
    # A dict.txt alone gives the ids but no way to split text into pieces.
    BertDictionary.load(str(model_dir[0] / "vocab.txt")).save(str(tmp_path / "dict.txt"))
    with pytest.raises(UserInputError, match="no tokenizer found"):
        SpanBertModel.from_pretrained(tmp_path, checkpoint_file="checkpoint_last.pt")


def test_default_checkpoint_is_best_then_last_then_imported(model_dir, tmp_path):
    shutil.copy(model_dir[0] / "vocab.txt", tmp_path / "vocab.txt")
    with pytest.raises(UserInputError, match="checkpoint_best.pt, checkpoint_last.pt, model.pt"):
        SpanBertModel.from_pretrained(tmp_path)
    shutil.copy(model_dir[0] / "checkpoint_last.pt", tmp_path / "model.pt")
    assert SpanBertModel.from_pretrained(tmp_path).encode("the cat").numel() == 4


def test_a_tokenizer_json_that_pads_does_not_pad_encode(model_dir, tmp_path):
    for name in ("vocab.txt", "checkpoint_last.pt"):
        shutil.copy(model_dir[0] / name, tmp_path / name)
    hub = SpanBertModel.from_pretrained(tmp_path)
    unpadded = hub.encode("the cat sat")
    # Save the same WordPiece tokenizer the way HF checkpoints often ship it: padding to 32.
    hub.text_tokenizer.tokenizer.enable_padding(length=32, pad_token="[PAD]")
    hub.text_tokenizer.tokenizer.save(str(tmp_path / "tokenizer.json"))
    assert torch.equal(SpanBertModel.from_pretrained(tmp_path).encode("the cat sat"), unpadded)


def test_torch_hub_load_from_the_repository(model_dir):
    hub = torch.hub.load(str(REPO_ROOT), "spanbert", str(model_dir[0]), source="local",
                         checkpoint_file="checkpoint_last.pt")
    assert hub.decode(hub.encode("span boundary")) == "span boundary"
