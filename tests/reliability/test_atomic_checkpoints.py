"""A SIGKILL while fairseq writes a checkpoint must never leave an unloadable checkpoint_last.pt.

fairseq's own `save_checkpoint` is driven by tests/reliability/checkpoint_writer.py in a subprocess that
kills itself half-way through a chosen write (fault_injection.py).
"""

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from spanbert_fairseq.patches import resume_fallback
from spanbert_text.errors import UserInputError

HERE = Path(__file__).resolve().parent
WRITER = HERE / "checkpoint_writer.py"


def run_writer(save_dir, updates, plugin, kill_during=None):
    env = dict(os.environ)
    env.pop("SPANBERT_KILL_DURING_WRITE", None)
    if kill_during:
        env["SPANBERT_KILL_DURING_WRITE"] = kill_during
    cmd = [sys.executable, str(WRITER), str(save_dir)] + (["--plugin"] if plugin else [])
    cmd += [str(u) for u in updates]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def saved_update(path):
    """The update number a checkpoint_writer checkpoint holds, or None if it does not load."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - any failure means the file is unusable
        return None
    return state["extra_state"]["num_updates"]


def test_vanilla_fairseq_leaves_truncated_last_when_killed_during_copy(tmp_path):
    """Establishes the bug being fixed: fairseq copies checkpoint_last.pt in place."""
    result = run_writer(tmp_path, [2, 4], plugin=False, kill_during="checkpoint_last.pt:2")
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert (tmp_path / "checkpoint_last.pt").exists()
    assert saved_update(tmp_path / "checkpoint_last.pt") is None
    assert not resume_fallback.is_readable_checkpoint(tmp_path / "checkpoint_last.pt")


@pytest.mark.parametrize(
    "kill_during, newest_complete",
    [
        ("checkpoint_last.pt:2", 4),  # killed copying update 4's checkpoint to checkpoint_last.pt
        ("checkpoint_1_4.pt:1", 2),  # killed while torch.save wrote update 4's checkpoint
    ],
)
def test_plugin_keeps_previous_last_when_killed_during_write(tmp_path, kill_during, newest_complete):
    result = run_writer(tmp_path, [2, 4], plugin=True, kill_during=kill_during)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert saved_update(tmp_path / "checkpoint_last.pt") == 2
    assert saved_update(tmp_path / f"checkpoint_1_{newest_complete}.pt") == newest_complete
    if newest_complete == 2:
        assert not (tmp_path / "checkpoint_1_4.pt").exists()


def test_plugin_writes_complete_checkpoints_without_leftovers(tmp_path):
    result = run_writer(tmp_path, [2, 4], plugin=True)
    assert result.returncode == 0, result.stderr
    assert saved_update(tmp_path / "checkpoint_last.pt") == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_1_2.pt",
        "checkpoint_1_4.pt",
        "checkpoint_last.pt",
    ]


def test_a_rerun_after_a_killed_write_overwrites_the_temporary_file(tmp_path):
    run_writer(tmp_path, [2, 4], plugin=True, kill_during="checkpoint_last.pt:2")
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    result = run_writer(tmp_path, [6], plugin=True)
    assert result.returncode == 0, result.stderr
    assert saved_update(tmp_path / "checkpoint_last.pt") == 6
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


class _RecordingTrainer:
    checkpoint_suffix = ""
    data_parallel_world_size = 1  # one process: every rank (this one) checks the file itself

    def __init__(self):
        self.loaded = []

    def load_checkpoint(self, filename, *args, **kwargs):
        self.loaded.append(filename)
        return None  # as for a first launch: fairseq then starts epoch 1

    def get_train_iterator(self, epoch, **kwargs):
        return SimpleNamespace(epoch=epoch)

    def lr_step(self, epoch):
        pass


def resume(save_dir):
    from fairseq import checkpoint_utils
    from fairseq.dataclass.configs import CheckpointConfig
    from omegaconf import OmegaConf

    resume_fallback.install()  # as in fairseq-train
    cfg = OmegaConf.structured(CheckpointConfig(save_dir=str(save_dir)))
    trainer = _RecordingTrainer()
    checkpoint_utils.load_checkpoint(cfg, trainer)
    return trainer.loaded


def write_checkpoints(save_dir, updates):
    for update in updates:
        path = save_dir / f"checkpoint_1_{update}.pt"
        torch.save({"extra_state": {"num_updates": update}}, path)
        os.utime(path, (update, update))  # mtime order = save order, whatever the clock resolution


def test_resume_falls_back_to_newest_readable_checkpoint_and_says_so(tmp_path, caplog):
    write_checkpoints(tmp_path, [2, 4])
    last = tmp_path / "checkpoint_last.pt"
    data = (tmp_path / "checkpoint_1_4.pt").read_bytes()
    last.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING):
        loaded = resume(tmp_path)
    assert loaded == [str(tmp_path / "checkpoint_1_4.pt")]
    assert str(last) in caplog.text and "checkpoint_1_4.pt" in caplog.text


def test_resume_skips_every_unreadable_candidate(tmp_path):
    write_checkpoints(tmp_path, [2, 4])
    (tmp_path / "checkpoint_last.pt").write_bytes(b"")
    (tmp_path / "checkpoint_1_4.pt").write_bytes(b"PK\x03\x04 truncated")
    assert resume(tmp_path) == [str(tmp_path / "checkpoint_1_2.pt")]


def test_resume_with_no_readable_checkpoint_names_the_file(tmp_path):
    (tmp_path / "checkpoint_last.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(UserInputError, match="checkpoint_last.pt is truncated or corrupt"):
        resume(tmp_path)


def test_resume_from_a_readable_checkpoint_is_unchanged(tmp_path):
    write_checkpoints(tmp_path, [2])
    os.replace(tmp_path / "checkpoint_1_2.pt", tmp_path / "checkpoint_last.pt")
    assert resume(tmp_path) == [str(tmp_path / "checkpoint_last.pt")]


def test_first_launch_is_unchanged(tmp_path):
    assert resume(tmp_path) == [str(tmp_path / "checkpoint_last.pt")]


def test_legacy_torch_format_counts_as_readable(tmp_path):
    path = tmp_path / "checkpoint_last.pt"
    torch.save({"a": torch.ones(3)}, path, _use_new_zipfile_serialization=False)
    assert resume_fallback.is_readable_checkpoint(path)
