"""A spanbert_tiny run killed with SIGKILL at several points and resumed with the same command ends
with parameters (and optimizer state) bitwise equal to an uninterrupted run.

The data has 26 updates per epoch; runs stop at update 40 and save every 4 updates, so resumes happen
mid-epoch in epoch 1, across the epoch boundary and mid-epoch in epoch 2. Kill points (seeded, so CI
sees the same ones):
  1. half-way through copying the update-8 checkpoint to checkpoint_last.pt (fault injected in the
     training process: the write fairseq 0.12 does in place);
  2. SIGKILL from outside a random 0-80 ms after a random update in 10..22 is logged (this may land
     inside a checkpoint write: each takes about as long);
  3. the same after a random update in epoch 2 (29..37);
  4. checkpoint_last.pt is then cut in half (as a kill during fairseq's own in-place copy leaves it)
     and the run finishes: it must fall back to the newest readable checkpoint and say so.
Every checkpoint both runs wrote is compared, so a failure names the first update that differs.
"""

import random
import re
import signal

import pytest
from train_harness import (
    MAX_UPDATE,
    UPDATES_PER_EPOCH,
    differing_tensors,
    kill_after_update,
    load_state,
    run_to_end,
    train_command,
)

pytestmark = pytest.mark.slow

KILL_SEED = 20261125
INTERVAL_CHECKPOINT = re.compile(r"checkpoint_(\d+)_(\d+)\.pt")


def training_state(path):
    state = load_state(path)
    return {"model": state["model"], "optimizer": state["last_optimizer_state"]}


def interval_checkpoints(save_dir):
    """{update: path} of the checkpoint_<epoch>_<update>.pt files in save_dir."""
    found = {}
    for path in save_dir.iterdir():
        match = INTERVAL_CHECKPOINT.fullmatch(path.name)
        if match:
            found[int(match.group(2))] = path
    return found


def resumed_from(launch):
    """The update a launch resumed from, from fairseq's "Loaded checkpoint ... (epoch E @ N updates)"."""
    for line in launch.lines:
        if "Loaded checkpoint" in line:
            return int(line.split("@")[1].split()[0])
    return 0


def kill_chain(command, save_dir, rng):
    """Run the kill points of the module docstring; return [(kill point, resumed from, updates seen)]."""
    history = []
    launch = run_to_end(command, kill_during_write="checkpoint_last.pt:2")
    assert launch.proc.returncode == -signal.SIGKILL, launch.output[-3000:]
    history.append(("copy to checkpoint_last.pt", resumed_from(launch), launch.updates_seen()))

    for name, low, high in (("epoch 1", 10, 22), ("epoch 2", UPDATES_PER_EPOCH + 3, MAX_UPDATE - 3)):
        launch, reached = kill_after_update(command, rng.randint(low, high), rng.uniform(0, 0.08))
        assert reached, launch.output[-3000:]
        history.append((f"external SIGKILL, {name}", resumed_from(launch), launch.updates_seen()))

    last = save_dir / "checkpoint_last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    launch = run_to_end(command)
    assert launch.proc.returncode == 0, launch.output[-3000:]
    assert f"checkpoint {last} is truncated or corrupt; resuming from" in launch.output, launch.output[-3000:]
    history.append(("none (truncated checkpoint_last.pt): ran to the end", resumed_from(launch), launch.updates_seen()))
    return history


def test_killed_and_resumed_run_matches_uninterrupted_run_bitwise(tiny_data_dir, tmp_path, uninterrupted_dir):
    history = kill_chain(train_command(tiny_data_dir, tmp_path, MAX_UPDATE), tmp_path, random.Random(KILL_SEED))
    resumes = [start for _, start, _ in history]
    assert 0 < resumes[1] < UPDATES_PER_EPOCH < resumes[-1], f"the resumes were not mid-epoch: {history}"

    reference, resumed = interval_checkpoints(uninterrupted_dir), interval_checkpoints(tmp_path)
    for update in sorted(set(reference) & set(resumed)):
        diff = differing_tensors(training_state(reference[update]), training_state(resumed[update]))
        assert not diff, (
            f"after kills {history}: update {update} differs first ({len(diff)} tensors, e.g. {diff[:3]})"
        )
    diff = differing_tensors(
        training_state(uninterrupted_dir / "checkpoint_last.pt"), training_state(tmp_path / "checkpoint_last.pt")
    )
    assert not diff, f"after kills {history}: final state differs in {len(diff)} tensors, e.g. {diff[:3]}"


def test_resume_with_data_loader_workers_matches_uninterrupted_run_bitwise(tiny_data_dir, tmp_path, uninterrupted_dir):
    # Masks are keyed on (seed, epoch, index), and the epoch reaches worker processes through shared
    # memory: two workers, stopped in epoch 2 and resumed, must see the batches a worker-less run saw.
    workers = ["--num-workers", "2"]
    stopped = run_to_end(train_command(tiny_data_dir, tmp_path, extra=[*workers, "--max-update", "30"]))
    assert stopped.proc.returncode == 0 and stopped.updates_seen() == 30, stopped.output[-3000:]
    resumed = run_to_end(train_command(tiny_data_dir, tmp_path, extra=workers))
    assert resumed.proc.returncode == 0 and resumed_from(resumed) == 30, resumed.output[-3000:]
    diff = differing_tensors(
        training_state(uninterrupted_dir / "checkpoint_last.pt"), training_state(tmp_path / "checkpoint_last.pt")
    )
    assert not diff, f"workers 2, resumed at 30: final state differs in {len(diff)} tensors, e.g. {diff[:3]}"
