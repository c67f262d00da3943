"""Each checkpoint spanbert-import / spanbert-export cannot convert gives a clear error, naming
what is wrong, never a shape-mismatch traceback."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from spanbert_fairseq.interop.bert_layout import SBO_FILE
from spanbert_fairseq.interop.export_checkpoint import export_checkpoint
from spanbert_fairseq.interop.import_checkpoint import import_checkpoint
from spanbert_fairseq.models.span_bert import check_vocabulary_size
from spanbert_text.errors import UserInputError

_spec = importlib.util.spec_from_file_location("_synthetic", Path(__file__).with_name("synthetic.py"))
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)


def _src(tmp_path, tiny_bert, config_changes=(), drop=(), replace=None, vocab=True):
    state, config = tiny_bert
    state = {k: v for k, v in state.items() if k not in drop}
    state.update(replace or {})
    return synthetic.write_hf_dir(tmp_path / "src", state, {**config, **dict(config_changes)}, vocab=vocab)


CONFIG_ERRORS = {
    "not BERT": ({"model_type": "roberta"}, "model_type='roberta'"),
    "tanh GeLU": ({"hidden_act": "gelu_new"}, "hidden_act='gelu_new'"),
    "relative positions": ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
    "a decoder": ({"is_decoder": True}, "is_decoder=True"),
    "fewer layers than the weights": ({"num_hidden_layers": 1}, "does not describe: bert.encoder.layer.1"),
    "another hidden size": ({"hidden_size": 16, "num_attention_heads": 2}, "is 62x32 in the checkpoint but 62x16"),
    "another vocab_size": ({"vocab_size": 100}, "vocab_size=100 but the word embeddings"),
    "heads do not divide hidden": ({"num_attention_heads": 5}, "not a multiple of num_attention_heads 5"),
    "no intermediate_size": ({"intermediate_size": None}, "lacks intermediate_size"),
}


@pytest.mark.parametrize("case", CONFIG_ERRORS)
def test_config_that_does_not_describe_the_weights(tiny_bert, tmp_path, case):
    changes, message = CONFIG_ERRORS[case]
    src = _src(tmp_path, tiny_bert, changes.items())
    if case == "no intermediate_size":
        config = json.loads((src / "config.json").read_text())
        del config["intermediate_size"]
        (src / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        import_checkpoint(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_error_names_the_pickled_config_of_a_fairseq06_checkpoint(tiny_bert, tmp_path):
    state, config = tiny_bert
    path = synthetic.write_fairseq06_checkpoint(tmp_path / "model.pt", state, {**config, "hidden_act": "relu"})
    vocab = synthetic.write_vocab(tmp_path / "vocab.txt")
    with pytest.raises(UserInputError, match=r"the config pickled in .*model.pt: hidden_act='relu'"):
        import_checkpoint(path, tmp_path / "out", vocab=vocab)
    (tmp_path / "fixed.json").write_text(json.dumps(config))  # --config overrides the pickled one
    report = import_checkpoint(path, tmp_path / "out", vocab=vocab, config=tmp_path / "fixed.json")
    assert report.loaded_heads == ["MLM head"]


def test_vocabulary_whose_size_disagrees_with_the_embeddings(tiny_bert, tmp_path):
    src = _src(tmp_path, tiny_bert)
    short = synthetic.write_vocab(tmp_path / "short.txt", synthetic.TINY_VOCAB[:-3])
    with pytest.raises(UserInputError, match=r"short.txt has 59 entries but the word embeddings .* have 62 rows"):
        import_checkpoint(src, tmp_path / "out", vocab=short)


def test_no_vocabulary_beside_the_checkpoint(tiny_bert, tmp_path):
    src = _src(tmp_path, tiny_bert, vocab=False)
    with pytest.raises(UserInputError, match="no vocab.txt beside .*--vocab"):
        import_checkpoint(src, tmp_path / "out")


def test_missing_encoder_tensor(tiny_bert, tmp_path):
    src = _src(tmp_path, tiny_bert, drop={"bert.encoder.layer.1.output.dense.weight"})
    lacks = "not a complete BERT encoder: it lacks bert.encoder.layer.1.output.dense.weight"
    with pytest.raises(UserInputError, match=lacks):
        import_checkpoint(src, tmp_path / "out")


def test_part_of_a_head(tiny_bert, tmp_path):
    src = _src(tmp_path, tiny_bert)
    sbo = synthetic.random_sbo_head()
    sbo.pop("cls.pair_target_predictions.bias")
    save_file(sbo, str(src / SBO_FILE))
    with pytest.raises(UserInputError, match="part of the SBO head: it lacks cls.pair_target_predictions.bias"):
        import_checkpoint(src, tmp_path / "out")


def test_untied_output_projection(tiny_bert, tmp_path):
    untied = torch.randn(len(synthetic.TINY_VOCAB), synthetic.TINY_CONFIG["hidden_size"])
    src = _src(tmp_path, tiny_bert, replace={"cls.predictions.decoder.weight": untied})
    with pytest.raises(UserInputError, match="cls.predictions.decoder.weight differs .* tied"):
        import_checkpoint(src, tmp_path / "out")


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(UserInputError, match="checkpoint not found"):
        import_checkpoint(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="holds no checkpoint: looked for model.safetensors"):
        import_checkpoint(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "pytorch_model.bin").write_bytes(b"not a torch file")
    with pytest.raises(UserInputError, match="cannot read .* as a torch checkpoint"):
        import_checkpoint(tmp_path / "junk", tmp_path / "out")


def test_import_of_a_span_bert_checkpoint_says_it_needs_none(imported_minilm, tmp_path):
    with pytest.raises(UserInputError, match="not the authors' SpanBERT one"):
        import_checkpoint(imported_minilm[0] / "model.pt", tmp_path / "out")


def test_export_with_a_vocabulary_of_another_size(tiny_bert, tmp_path):
    report = import_checkpoint(_src(tmp_path, tiny_bert), tmp_path / "sb")
    short = synthetic.write_vocab(tmp_path / "short.txt", synthetic.TINY_VOCAB[:-3])
    with pytest.raises(UserInputError, match=r"was trained with 62 vocabulary entries but .*short.txt has 59"):
        export_checkpoint(report.checkpoint, tmp_path / "hf", vocab=short)


def test_export_of_something_else(tmp_path):
    optimizer_history = [{"criterion_name": "MaskedLmLoss", "optimizer_name": "FairseqAdam",
                          "lr_scheduler_state": {}, "num_updates": 10}]
    torch.save({"model": {}, "cfg": {"model": {"_name": "roberta_base"}}, "extra_state": {"train_iterator": {}},
                "optimizer_history": optimizer_history}, tmp_path / "other.pt")
    with pytest.raises(UserInputError, match="not a span_bert checkpoint"):
        export_checkpoint(tmp_path / "other.pt", tmp_path / "hf")


def test_restore_check_names_both_sizes():
    state = {"encoder.bert.embeddings.word_embeddings.weight": torch.zeros(30522, 4)}
    check_vocabulary_size(state, 30522)
    with pytest.raises(UserInputError, match="trained with 30522 vocabulary entries but data/dict.txt has 28996"):
        check_vocabulary_size(state, 28996, "model.pt", "data/dict.txt")


def test_cli_prints_one_error_line_and_exits_1(tiny_bert, tmp_path, capsys):
    src = _src(tmp_path, tiny_bert, {"hidden_act": "relu"}.items())
    run = subprocess.run(  # as a user runs it: a process, its stderr, its exit status
        [sys.executable, "-m", "spanbert_fairseq.interop.import_checkpoint", str(src), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert errors == [f"spanbert-import: error: {src / 'config.json'}: hidden_act='relu', but span_bert "
                      f"is BERT's encoder (hidden_act must be 'gelu')"], run.stderr

    from spanbert_fairseq.interop.export_checkpoint import main as export_main

    with pytest.raises(SystemExit) as exit_info:
        export_main([str(tmp_path / "missing.pt"), str(tmp_path / "hf")])
    assert exit_info.value.code == 1
    expected = f"spanbert-export: error: checkpoint not found: {tmp_path / 'missing.pt'}\n"
    assert capsys.readouterr().err == expected


def test_restoring_into_a_model_of_another_vocabulary(imported_minilm, tmp_path):
    """What fairseq-train --restore-file and the hub do: load_state_dict into a model built on the
    data's dict.txt. A size mismatch per tensor would bury the cause; one line must name it."""
    from spanbert_fairseq.data.dictionary import BertDictionary
    from spanbert_fairseq.interop import span_bert_checkpoint as ckpt
    from spanbert_fairseq.models.span_bert import SpanBertModel

    cfg, state, _ = ckpt.load_checkpoint(imported_minilm[0] / "model.pt")
    data_dictionary = BertDictionary.load(str(synthetic.write_vocab(tmp_path / "dict.txt")))
    model = SpanBertModel.for_dictionary(cfg.model, data_dictionary)
    with pytest.raises(UserInputError, match="trained with 30522 vocabulary entries but .* has 62"):
        model.load_state_dict(state, strict=True, model_cfg=cfg.model)
