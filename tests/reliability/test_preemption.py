"""SIGUSR1 (SLURM's --signal) and SIGTERM (SLURM's preemption, torchrun's shutdown) make training save
checkpoint_last.pt after the current update and exit with status 0; resuming then continues to the
same parameters as an uninterrupted run. fairseq 0.12 alone has no handler: either signal kills it.
"""

import os
import random
import re
import signal

import pytest
from train_harness import MAX_UPDATE, Launch, differing_tensors, load_state, run_to_end, train_command

pytestmark = pytest.mark.slow

STOPPED_AT = re.compile(r"stopping at update (\d+)")


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


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_a_signal_to_the_process_group_saves_with_data_loader_workers(tiny_data_dir, tmp_path, signum, status):
    """Ctrl-C (SIGINT to the terminal's process group) or `kill -TERM -PGID` with --num-workers 2: the
    workers get the signal too. Training still saves checkpoint_last.pt after the current update."""
    launch = Launch(train_command(tiny_data_dir, tmp_path, MAX_UPDATE, extra=["--num-workers", "2"]))
    assert launch.wait_for_update(7), launch.output[-3000:]
    launch.send_to_group(signum)
    assert launch.finish() == status, launch.output[-3000:]
    stopped = int(STOPPED_AT.search(launch.output).group(1))
    assert stopped >= 7 and saved_updates(tmp_path / "checkpoint_last.pt") == stopped
    assert "Traceback" not in launch.output and "exited unexpectedly" not in launch.output
    if signum == signal.SIGINT:
        expected = f"fairseq-train: interrupted at update {stopped}; saved checkpoint_last.pt in {tmp_path}"
        assert expected in launch.output, launch.output[-3000:]


def test_a_second_ctrl_c_stops_at_once(tiny_data_dir, tmp_path):
    launch = Launch(train_command(tiny_data_dir, tmp_path, MAX_UPDATE, extra=["--max-update", "100000"]))
    assert launch.wait_for_update(3), launch.output[-3000:]
    launch.send(signal.SIGINT)
    assert launch.wait_for_line(lambda line: "received SIGINT" in line), launch.output[-3000:]
    launch.send(signal.SIGINT)
    assert launch.finish() == -signal.SIGINT, launch.output[-3000:]
    assert "Traceback" not in launch.output


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_pids(parent_pid):
    """{RANK: pid} of the processes torchrun started (its children with RANK in their environment)."""
    with open(f"/proc/{parent_pid}/task/{parent_pid}/children") as f:
        children = [int(p) for p in f.read().split()]
    ranks = {}
    for pid in children:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        if b"RANK" in env:
            ranks[int(env[b"RANK"])] = pid
    return ranks


@pytest.mark.slow
def test_a_signal_to_one_rank_stops_all_ranks_at_the_same_update(tiny_data_dir, tmp_path):
    """torchrun, 2 CPU processes: SIGUSR1 to rank 1 alone; rank 0 must stop at the same update and save."""
    import sys

    command = train_command(tiny_data_dir, tmp_path, extra=["--distributed-backend", "gloo", "--ddp-backend",
                                                             "legacy_ddp", "--batch-size", "4"])
    command[:2] = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                   "127.0.0.1", "--master-port", str(free_port()), "-m", "fairseq_cli.train"]
    launch = Launch(command)
    assert launch.wait_for_update(6), launch.output[-3000:]
    os.kill(worker_pids(launch.proc.pid)[1], signal.SIGUSR1)
    assert launch.finish() == 0, launch.output[-3000:]
    stops = [int(m) for m in STOPPED_AT.findall(launch.output)]
    assert len(stops) == 2 and stops[0] == stops[1], launch.output[-3000:]
    assert saved_updates(tmp_path / "checkpoint_last.pt") == stops[0] < MAX_UPDATE
