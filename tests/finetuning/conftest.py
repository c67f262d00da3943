"""A span_bert pretraining checkpoint, a small GLUE-format task the tests write, its binaries, and a
short sentence_prediction fine-tune restored from the checkpoint: what a GLUE user runs."""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from spanbert_text.vocabulary import Vocabulary

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_DIR = str(REPO_ROOT / "spanbert_fairseq")
BIN = Path(sys.executable).parent
RTE_HEADER = "index\tsentence1\tsentence2\tlabel"


def run(argv, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def rte_rows(words, count, seed):
    """A learnable RTE-format task that only a model reading the pair as BERT does can learn: the
    label says which sentence holds the marker word (words[0]), sentence 2 (entailment) or 1."""
    rng = random.Random(seed)
    marker, words = words[0], words[1:]
    rows = []
    for i in range(count):
        first, second = rng.sample(words, 5), rng.sample(words, 3)
        entailed = rng.random() < 0.5
        holder = second if entailed else first
        holder.insert(rng.randrange(len(holder) + 1), marker)
        rows.append(f"{i}\t{' '.join(first)}\t{' '.join(second)}\t{'entailment' if entailed else 'not_entailment'}")
    return rows


@pytest.fixture(scope="session")
def glue_task_dir(tiny_data_dir, tmp_path_factory):
    """RTE/train.tsv (160 rows) and RTE/dev.tsv (40), of whole words of the tiny vocabulary."""
    vocab = (tiny_data_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    words = [w for w in vocab if w.isalpha() and w.islower() and len(w) > 2][:200]
    out = tmp_path_factory.mktemp("glue") / "RTE"
    out.mkdir()
    for name, count, seed in (("train.tsv", 160, 0), ("dev.tsv", 40, 1)):
        (out / name).write_text("\n".join([RTE_HEADER, *rte_rows(words, count, seed)]) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def glue_bin(glue_task_dir, tiny_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("glue-bin") / "RTE-bin"
    run([BIN / "spanbert-glue", glue_task_dir, "--vocab", tiny_data_dir / "vocab.txt", "--destdir", out,
         "--max-len", 64, "--workers", 1])
    return out


@pytest.fixture(scope="session")
def pretrained_dir(tiny_data_dir, tmp_path_factory):
    """checkpoint_last.pt of 2 span_bert pretraining updates of spanbert_tiny."""
    save_dir = tmp_path_factory.mktemp("pretrained")
    run([BIN / "fairseq-train", tiny_data_dir, "--user-dir", USER_DIR, "--task", "span_bert",
         "--criterion", "span_bert", "--arch", "spanbert_tiny", "--tokens-per-sample", "64", "--batch-size", "8",
         "--optimizer", "adam", "--lr", "1e-3", "--max-update", "2", "--num-workers", "0", "--cpu", "--seed", "1",
         "--no-epoch-checkpoints", "--save-dir", save_dir])
    return save_dir


def init_token(glue_bin):
    return Vocabulary.load(glue_bin / "input0" / "dict.txt").cls()


def fine_tuning_flags(glue_bin, save_dir, restore):
    """fairseq-train's flags for the GLUE binaries, as spanbert-glue's summary line gives them."""
    return [glue_bin, "--user-dir", USER_DIR, "--task", "sentence_prediction", "--criterion", "sentence_prediction",
            "--num-classes", "2", "--init-token", init_token(glue_bin), "--max-positions", "512",
            "--arch", "spanbert_tiny",
            "--restore-file", restore, "--reset-optimizer", "--reset-dataloader", "--reset-meters",
            "--batch-size", "16", "--optimizer", "adam", "--lr", "1e-3", "--max-epoch", "3", "--dropout", "0",
            "--attention-dropout", "0", "--num-workers", "0", "--cpu", "--seed", "1", "--no-epoch-checkpoints",
            "--best-checkpoint-metric", "accuracy", "--maximize-best-checkpoint-metric", "--save-dir", save_dir,
            "--log-format", "simple"]


@pytest.fixture(scope="session")
def fine_tuned(glue_bin, pretrained_dir, tmp_path_factory):
    """(save dir, fairseq-train's log) of 3 epochs of sentence_prediction from the pretraining checkpoint."""
    save_dir = tmp_path_factory.mktemp("fine-tuned")
    done = run([BIN / "fairseq-train", *fine_tuning_flags(glue_bin, save_dir, pretrained_dir / "checkpoint_last.pt")])
    return save_dir, done.stdout + done.stderr
