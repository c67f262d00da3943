"""Whole-file work happens once per job, not once per rank (2 gloo ranks under torchrun, CPU).

- The dictionary check of binaries without a stamp (stock fairseq-preprocess wrote them) scans the
  whole .bin on rank 0 only; with spanbert-preprocess's stamp no rank scans.
- The resume's CRC check of checkpoint_last.pt runs on rank 0 only, where fairseq 0.12's
  Trainer.load_checkpoint reads the file (it broadcasts the state to the other ranks).
"""

import collections
import os
import shutil
import sys

import pytest
from train_harness import HERE, Launch, load_state, train_command

from spanbert_text.split_stamp import write_stamp

pytestmark = pytest.mark.slow

COUNTING_ENTRY = HERE / "counting_entry.py"


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def counted_torchrun(data_dir, save_dir, max_update, count_file):
    command = train_command(data_dir, save_dir, max_update, extra=[
        "--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp", "--batch-size", "4",
        "--save-interval-updates", "2", "--disable-validation"])
    command[:2] = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                   "127.0.0.1", "--master-port", str(free_port()), str(COUNTING_ENTRY)]
    os.environ["SPANBERT_COUNT_FILE"] = str(count_file)
    try:
        launch = Launch(command)
    finally:
        del os.environ["SPANBERT_COUNT_FILE"]
    assert launch.finish() == 0, launch.output[-3000:]
    calls = count_file.read_text().split() if count_file.exists() else []
    return collections.Counter(zip(calls[::2], calls[1::2]))


def stamp_like_spanbert_preprocess(data_dir):
    from fairseq.data.indexed_dataset import MMapIndexedDataset

    symbols = [line.rsplit(" ", 1)[0] for line in (data_dir / "dict.txt").read_text(encoding="utf-8").splitlines()]
    for split in ("train", "valid"):
        dataset = MMapIndexedDataset(str(data_dir / split))
        write_stamp(str(data_dir / split), symbols, len(dataset), int(dataset.sizes.sum()),
                    max(int(dataset[i].max()) for i in range(len(dataset))))


def test_whole_file_checks_run_on_one_rank(tiny_data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    save_dir = tmp_path / "save"
    # Binaries without a stamp: the train split (validation is off) scanned once, on rank 0.
    first = counted_torchrun(data, save_dir, 2, tmp_path / "first.txt")
    assert first == {("scan_ids", "0"): 1}, first

    # The resume reads checkpoint_last.pt whole once, on rank 0; with stamps, no rank scans the .bin.
    stamp_like_spanbert_preprocess(data)
    resumed = counted_torchrun(data, save_dir, 4, tmp_path / "resumed.txt")
    assert resumed == {("is_readable_checkpoint", "0"): 1}, resumed
    assert load_state(save_dir / "checkpoint_last.pt")["optimizer_history"][-1]["num_updates"] == 4
