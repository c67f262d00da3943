"""Fixtures of tests/training: a real corpus through spanbert-preprocess, and fairseq-train launchers."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_DIR = str(REPO_ROOT / "spanbert_fairseq")
TIMEOUT_S = 300


@pytest.fixture(scope="session")
def corpus_data_dir(tmp_path_factory, stdlib_documents):
    """The pydoc topic pages, preprocessed with a 2,000-piece WordPiece trained on them."""
    work = tmp_path_factory.mktemp("training-corpus")
    corpus = work / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join(doc) for doc in stdlib_documents) + "\n", encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "spanbert_preprocess.cli", str(corpus), "--train-wordpiece", "2000",
         "--valid-fraction", "0.05", "--workers", "2", "--destdir", str(work / "data")],
        check=True, timeout=TIMEOUT_S, capture_output=True,
    )
    return work / "data"


def tiny_training_args(data_dir, save_dir, max_update, batch_size=8, extra=()):
    return [
        str(data_dir), "--user-dir", USER_DIR, "--task", "span_bert", "--criterion", "span_bert",
        "--arch", "spanbert_tiny", "--tokens-per-sample", "64", "--batch-size", str(batch_size),
        "--optimizer", "adam", "--adam-betas", "(0.9,0.999)", "--weight-decay", "0.01",
        "--clip-norm", "1.0", "--lr", "2e-3", "--lr-scheduler", "polynomial_decay",
        "--warmup-updates", "10", "--total-num-update", "200", "--max-update", str(max_update),
        "--log-format", "json", "--log-interval", "1", "--num-workers", "0", "--seed", "7", "--cpu",
        "--save-dir", str(save_dir), *extra,
    ]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command, cwd, log_name):
    """Run to completion; on failure show the log's tail. Returns the combined output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(command, cwd=cwd, env=env, timeout=TIMEOUT_S, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    (Path(cwd) / log_name).write_text(output)
    assert proc.returncode == 0, f"{' '.join(command[:6])} ... failed:\n{output[-4000:]}"
    return output


def fairseq_train(args, cwd, log_name="train.log"):
    return run([sys.executable, "-m", "fairseq_cli.train", *args], cwd, log_name)


def torchrun_train(args, cwd, nproc, log_name="torchrun.log"):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
               "-m", "fairseq_cli.train", *args]
    return run(command, cwd, log_name)


def logged_records(output, tag):
    """The JSON records fairseq logged under `tag` (train_inner, valid, train)."""
    records = []
    for line in output.splitlines():
        marker = f"| {tag} | "
        if marker in line and line.rstrip().endswith("}"):
            records.append({k: float(v) if _is_number(v) else v
                            for k, v in json.loads(line.split(marker, 1)[1]).items()})
    return records


def _is_number(value):
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


@pytest.fixture(scope="session")
def launch():
    """The launchers, as a namespace, for the tests."""
    from types import SimpleNamespace

    return SimpleNamespace(
        tiny_training_args=tiny_training_args, fairseq_train=fairseq_train, torchrun_train=torchrun_train,
        logged_records=logged_records, free_port=free_port, run=run,
    )
