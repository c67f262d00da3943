"""Rerunning a command whose run already reached --max-update trains nothing and says so.

fairseq 0.12 alone resumes, trains update max+1 (the loop checks the limit after a step) and
rewrites the checkpoints.
"""

import shutil

import pytest
from train_harness import MAX_UPDATE, run_to_end, train_command

pytestmark = pytest.mark.slow


def test_rerunning_a_finished_run_trains_no_update(tiny_data_dir, uninterrupted_dir, tmp_path):
    save_dir = shutil.copytree(uninterrupted_dir, tmp_path / "save")
    before = {p.name: p.read_bytes() for p in save_dir.iterdir()}
    launch = run_to_end(train_command(tiny_data_dir, save_dir, MAX_UPDATE))
    assert launch.proc.returncode == 0, launch.output[-3000:]
    assert (f"fairseq-train: the run is complete (its checkpoint is at update {MAX_UPDATE}, "
            f"--max-update is {MAX_UPDATE}); nothing to train") in launch.output
    assert "train_inner" not in launch.output
    assert {p.name: p.read_bytes() for p in save_dir.iterdir()} == before
