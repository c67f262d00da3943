"""A checkpoint that fairseq-train wrote into a save directory holding no vocabulary (the data lives
elsewhere, as fairseq-train leaves it): what hub users load."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def trained_save_dir(tiny_data_dir, tmp_path_factory):
    """checkpoint_best.pt, checkpoint_last.pt and checkpoint_1_6.pt of 6 spanbert_tiny updates on tiny_data_dir."""
    save_dir = tmp_path_factory.mktemp("hub-save-dir")
    subprocess.run(
        [sys.executable, "-m", "fairseq_cli.train", str(tiny_data_dir),
         "--user-dir", str(REPO_ROOT / "spanbert_fairseq"), "--task", "span_bert", "--criterion", "span_bert",
         "--arch", "spanbert_tiny", "--tokens-per-sample", "64", "--batch-size", "8", "--optimizer", "adam",
         "--lr", "1e-3", "--max-update", "6", "--save-interval-updates", "3", "--num-workers", "0", "--cpu",
         "--seed", "1", "--save-dir", str(save_dir)],
        check=True, capture_output=True, timeout=300,
    )
    assert not list(save_dir.glob("*.txt"))
    return save_dir
