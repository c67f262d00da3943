"""Checkpoints for the spanbert-eval tests: a tiny model trained briefly by fairseq-train on
`tiny_data_dir` (with an intermediate checkpoint), and an untrained one as spanbert-import writes it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
SPANBERT_EVAL = Path(sys.executable).with_name("spanbert-eval")
TINY_SIZES = dict(encoder_layers=2, encoder_embed_dim=128, encoder_ffn_embed_dim=512, encoder_attention_heads=2)


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory, tiny_data_dir):
    """fairseq-train's save directory: checkpoint_last.pt (60 updates) and checkpoint_30.pt (30 updates)."""
    save_dir = tmp_path_factory.mktemp("eval-trained")
    args = [
        str(tiny_data_dir), "--user-dir", str(REPO_ROOT / "spanbert_fairseq"), "--task", "span_bert",
        "--criterion", "span_bert", "--arch", "spanbert_tiny", "--tokens-per-sample", "64", "--batch-size", "8",
        "--optimizer", "adam", "--lr", "3e-3", "--lr-scheduler", "polynomial_decay", "--warmup-updates", "10",
        "--total-num-update", "60", "--max-update", "60", "--save-interval-updates", "30",
        "--no-epoch-checkpoints", "--num-workers", "0", "--seed", "7", "--cpu", "--save-dir", str(save_dir),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "fairseq_cli.train", *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (middle,) = save_dir.glob("checkpoint_*_30.pt")  # fairseq names it after the epoch too
    middle.rename(save_dir / "checkpoint_30.pt")
    assert (save_dir / "checkpoint_last.pt").exists()
    return save_dir


@pytest.fixture(scope="session")
def untrained_dir(tmp_path_factory, tiny_data_dir):
    """An untrained spanbert_tiny (seeded initialisation) as spanbert-import writes it: model.pt + dict.txt."""
    from spanbert_fairseq.data.dictionary import BertDictionary
    from spanbert_fairseq.interop import span_bert_checkpoint as ckpt
    from spanbert_fairseq.models.span_bert import SpanBertModel

    out = tmp_path_factory.mktemp("eval-untrained")
    dictionary = BertDictionary.load(tiny_data_dir / "dict.txt")
    cfg = ckpt.training_cfg(out, TINY_SIZES)
    torch.manual_seed(0)
    model = SpanBertModel.for_dictionary(cfg.model, dictionary)
    ckpt.save_checkpoint(out / "model.pt", cfg, model.state_dict(), carried={})
    dictionary.save(out / "dict.txt")
    return out


def _spanbert_eval(*argv):
    proc = subprocess.run([str(SPANBERT_EVAL), *map(str, argv)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="session")
def spanbert_eval():
    """The console script as a user runs it: (*argv) -> (exit status, stdout, stderr)."""
    return _spanbert_eval


@pytest.fixture(scope="session")
def evaluate(tmp_path_factory):
    """spanbert-eval's command line run in this process (a fresh interpreter per call would cost
    seconds of imports): (*argv) -> the JSON record, exit status 0 asserted."""
    from spanbert_fairseq.evaluation.cli import PROG, run
    from spanbert_text.errors import run_cli

    out_dir = tmp_path_factory.mktemp("eval-json")

    def evaluate_(*argv):
        out = out_dir / f"run{len(list(out_dir.iterdir()))}.json"
        assert run_cli(PROG, run, [*map(str, argv), "--json", str(out)]) == 0
        return json.loads(out.read_text())

    return evaluate_


def _same_figures(rows, other_rows):
    """Equal counts; figures within 1e-4 (batching pads rows differently, so float sums may differ)."""
    assert len(rows) == len(other_rows)
    for row, other in zip(rows, other_rows):
        assert row.keys() == other.keys()
        for key, value in row.items():
            assert other[key] == (value if value is None or isinstance(value, (str, int)) else
                                  pytest.approx(value, abs=1e-4)), (row["span_words"], key)


@pytest.fixture(scope="session")
def assert_same_figures():
    """(rows, other rows) -> asserts the two checkpoints' records agree."""
    return _same_figures
