"""Loading a checkpoint never runs code from it, on every route that reads one; every legitimate
layout still loads.

A malicious pickle names `os.system` (as `posix.system`) through `__reduce__`: a full unpickler
would run `touch MARKER` while loading. Each route must refuse the file in one line naming it and
that global, with exit status 1 for a command, and leave no marker behind.
"""

import fractions
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from train_harness import REPO, run_to_end, train_command

from spanbert_fairseq import SpanBertModel
from spanbert_fairseq.checkpoint_io import TRUSTED_GLOBALS_ENV, UnsafeCheckpointError, safe_load

_spec = importlib.util.spec_from_file_location("_synthetic", REPO / "tests" / "interop" / "synthetic.py")
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)
BIN = Path(sys.executable).parent


class RunsCommand:
    """Unpickled by a full unpickler, it runs `touch marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def assert_refused_in_one_line(run, path, marker, prog):
    errors = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert run.returncode == 1, run.stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith(f"{prog}: error: "), run.stderr[-3000:]
    assert str(path) in errors[0] and "posix.system" in errors[0] and "refused" in errors[0], errors[0]
    assert "Traceback" not in run.stderr
    assert not marker.exists()


def command(*argv, env=None):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "MALICIOUS_CODE_RAN"


@pytest.fixture
def evil_span_bert_checkpoint(uninterrupted_dir, tmp_path, marker):
    """fairseq-train's checkpoint_last.pt with one more entry that runs a command when unpickled."""
    state = torch.load(uninterrupted_dir / "checkpoint_last.pt", weights_only=True)
    state["extra_state"]["payload"] = RunsCommand(marker)
    path = tmp_path / "evil" / "checkpoint_last.pt"
    path.parent.mkdir()
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def tiny_bert_state():
    """(state dict, config) of a random tiny transformers BertForPreTraining."""
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(**synthetic.TINY_CONFIG)
    return transformers.BertForPreTraining(config).state_dict(), config.to_dict()


def test_a_full_unpickler_would_run_the_payload(tmp_path, marker):
    """The fixture is real: torch's unrestricted loader runs the command (so the refusals below mean something)."""
    torch.save({"x": RunsCommand(marker)}, tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False)  # only in this test: it shows the danger
    assert marker.exists()


def test_spanbert_import_refuses_a_malicious_pytorch_model_bin(tiny_bert_state, tmp_path, marker):
    state, config = tiny_bert_state
    hf_dir = synthetic.write_hf_dir(tmp_path / "hf", {**state, "payload": RunsCommand(marker)}, config,
                                    weights="pytorch_model.bin")
    run = command(BIN / "spanbert-import", hf_dir, tmp_path / "out")
    assert_refused_in_one_line(run, hf_dir / "pytorch_model.bin", marker, "spanbert-import")
    assert not (tmp_path / "out").exists()


def test_spanbert_import_refuses_a_malicious_authors_model_pt(tiny_bert_state, tmp_path, marker):
    state, config = tiny_bert_state
    path = synthetic.write_fairseq06_checkpoint(tmp_path / "model.pt", {**state, "payload": RunsCommand(marker)},
                                                config)
    run = command(BIN / "spanbert-import", path, tmp_path / "out", "--vocab",
                  synthetic.write_vocab(tmp_path / "vocab.txt"))
    assert_refused_in_one_line(run, path, marker, "spanbert-import")


def test_spanbert_export_refuses_a_malicious_checkpoint(evil_span_bert_checkpoint, tmp_path, marker):
    run = command(BIN / "spanbert-export", evil_span_bert_checkpoint, tmp_path / "hf")
    assert_refused_in_one_line(run, evil_span_bert_checkpoint, marker, "spanbert-export")


def test_spanbert_eval_refuses_a_malicious_checkpoint(evil_span_bert_checkpoint, tiny_data_dir, marker):
    run = command(BIN / "spanbert-eval", evil_span_bert_checkpoint, "--data", tiny_data_dir)
    assert_refused_in_one_line(run, evil_span_bert_checkpoint, marker, "spanbert-eval")


def test_the_hub_and_torch_hub_refuse_a_malicious_checkpoint(evil_span_bert_checkpoint, marker):
    directory = evil_span_bert_checkpoint.parent
    with pytest.raises(UnsafeCheckpointError, match="posix.system"):
        SpanBertModel.from_pretrained(directory, "checkpoint_last.pt")
    with pytest.raises(UnsafeCheckpointError, match="posix.system"):
        torch.hub.load(str(REPO), "spanbert", str(directory), "checkpoint_last.pt", source="local")
    assert not marker.exists()


@pytest.mark.slow
def test_fairseq_train_refuses_a_malicious_resume_and_restore_file(
        tiny_data_dir, evil_span_bert_checkpoint, tmp_path, marker):
    resume = run_to_end(train_command(tiny_data_dir, evil_span_bert_checkpoint.parent))
    restore = run_to_end(train_command(tiny_data_dir, tmp_path / "fresh",
                                       extra=["--restore-file", str(evil_span_bert_checkpoint)]))
    for launch in (resume, restore):
        errors = [line for line in launch.lines if ": error: " in line]
        assert launch.proc.returncode == 1, launch.output[-3000:]
        assert len(errors) == 1 and errors[0].startswith("fairseq-train: error: "), launch.output[-3000:]
        assert str(evil_span_bert_checkpoint) in errors[0] and "posix.system" in errors[0]
        assert "Traceback" not in launch.output and "train_inner" not in launch.output
    assert not marker.exists()


@pytest.mark.slow
def test_fairseq_validate_refuses_a_malicious_checkpoint(tiny_data_dir, evil_span_bert_checkpoint, marker):
    run = command(sys.executable, "-m", "fairseq_cli.validate", tiny_data_dir, "--path", evil_span_bert_checkpoint,
                  "--user-dir", REPO / "spanbert_fairseq", "--task", "span_bert", "--cpu",
                  "--tokens-per-sample", 64, "--batch-size", 8)
    assert_refused_in_one_line(run, evil_span_bert_checkpoint, marker, "fairseq-validate")


@pytest.mark.slow
@pytest.mark.parametrize("precision", [[], ["--fp16"], ["--memory-efficient-fp16"]])
def test_fairseq_train_checkpoints_load_on_every_route(tiny_data_dir, tmp_path, precision):
    """Written mid-epoch with 2 data-loader workers (and fp16 state where asked): fairseq-train resumes
    from it, the hub loads it from a save directory that holds no vocabulary, spanbert-export reads it."""
    save_dir = tmp_path / "save"
    extra = [*precision, "--num-workers", "2", "--save-interval-updates", "3"]
    first = run_to_end(train_command(tiny_data_dir, save_dir, max_update=3, extra=extra))
    assert first.proc.returncode == 0, first.output[-3000:]
    assert not list(save_dir.glob("*.txt"))  # no vocabulary beside the checkpoints
    resumed = run_to_end(train_command(tiny_data_dir, save_dir, max_update=5, extra=extra))
    assert resumed.proc.returncode == 0 and "@ 3 updates" in resumed.output, resumed.output[-3000:]
    assert resumed.updates_seen() == 5
    hub = SpanBertModel.from_pretrained(save_dir, "checkpoint_last.pt")
    assert hub.extract_features(hub.encode("the return statement")).isfinite().all()
    run = command(BIN / "spanbert-export", save_dir / "checkpoint_last.pt", tmp_path / "hf")
    assert run.returncode == 0 and (tmp_path / "hf" / "model.safetensors").exists(), run.stderr


def test_allowlisted_types_load_and_others_need_the_users_word(tmp_path):
    """argparse.Namespace and numpy scalars (what fairseq's args and meters hold) load; a type outside
    the allowlist is refused until SPANBERT_TRUSTED_GLOBALS names it."""
    import argparse

    legit = {"args": argparse.Namespace(arch="spanbert_base", lr=[1e-4]), "best_loss": np.float64(2.5),
             "steps": np.int64(7), "model": {"w": torch.ones(2)}}
    torch.save(legit, tmp_path / "legit.pt")
    loaded = safe_load(tmp_path / "legit.pt")
    assert loaded["args"].arch == "spanbert_base" and loaded["best_loss"] == 2.5 and loaded["steps"] == 7

    path = tmp_path / "fraction.pt"
    torch.save({"ratio": fractions.Fraction(1, 3)}, path)
    refusal = f"fraction.pt: refused .*fractions.Fraction.*{TRUSTED_GLOBALS_ENV}"
    with pytest.raises(UnsafeCheckpointError, match=refusal):
        safe_load(path)
    load = f"from spanbert_fairseq.checkpoint_io import safe_load; print(safe_load({str(path)!r}))"
    trusted = command(sys.executable, "-c", load, env={TRUSTED_GLOBALS_ENV: "fractions.Fraction"})
    assert trusted.returncode == 0 and "{'ratio': Fraction(1, 3)}" in trusted.stdout, trusted.stderr
