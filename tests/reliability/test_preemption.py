"""SIGUSR1 (SLURM's --signal) and SIGTERM (SLURM's preemption, torchrun's shutdown) make training save
checkpoint_last.pt after the current update and exit with status 0; resuming then continues to the
same parameters as an uninterrupted run. fairseq 0.12 alone has no handler: either signal kills it.
"""

import random
import re
import signal

import pytest

from train_harness import MAX_UPDATE, Launch, differing_tensors, load_state, run_to_end, train_command

pytestmark = pytest.mark.slow

STOPPED_AT = re.compile(r"stopping for preemption at update (\d+)")


def stop_with(command, signum, after_update):
    launch = Launch(command)
    assert launch.wait_for_update(after_update), launch.output[-3000:]
    launch.send(signum)
    assert launch.finish() == 0, launch.output[-3000:]
    match = STOPPED_AT.search(launch.output)
    assert match, launch.output[-3000:]
    assert f"received {signal.Signals(signum).name}" in launch.output
    return int(match.group(1))


def saved_updates(path):
    return load_state(path)["optimizer_history"][-1]["num_updates"]


def test_preemption_signals_save_exit_cleanly_and_resume_exactly(tiny_data_dir, tmp_path, uninterrupted_dir):
    rng = random.Random(7)
    command = train_command(tiny_data_dir, tmp_path, MAX_UPDATE)
    # Odd updates: never an interval checkpoint, so the saved state can only come from the signal.
    for signum, after in ((signal.SIGUSR1, rng.randrange(5, 20, 2)), (signal.SIGTERM, rng.randrange(27, 37, 2))):
        stopped = stop_with(command, signum, after)
        assert stopped >= after
        assert saved_updates(tmp_path / "checkpoint_last.pt") == stopped

    launch = run_to_end(command)
    assert launch.proc.returncode == 0, launch.output[-3000:]
    reference = load_state(uninterrupted_dir / "checkpoint_last.pt")["model"]
    diff = differing_tensors(reference, load_state(tmp_path / "checkpoint_last.pt")["model"])
    assert not diff, f"{len(diff)} tensors differ after stop/resume, e.g. {diff[:3]}"
