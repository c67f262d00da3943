"""SIGUSR1 (SLURM's --signal) and SIGTERM (SLURM's preemption, torchrun's shutdown) make training save
checkpoint_last.pt after the current update and exit with status 0; resuming then continues to the
same parameters as an uninterrupted run. fairseq 0.12 alone has no handler: either signal kills it.
"""

import os
import random
import re
import signal
import sys
import time

import pytest
from train_harness import MAX_UPDATE, Launch, differing_tensors, load_state, run_to_end, train_command

pytestmark = pytest.mark.slow

STOPPED_AT = re.compile(r"stopping at update (\d+)")
STOP_TIME = re.compile(r"stop requested at \S+, checkpoint_last\.pt saved at \S+: ([\d.]+) s from request to saved")


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
    time.sleep(0.3)  # a copy within FORWARDED_WITHIN_S (0.25 s) is torchrun's forwarding, not a second press
    launch.send(signal.SIGINT)
    assert launch.finish() == -signal.SIGINT, launch.output[-3000:]
    assert "Traceback" not in launch.output


def test_a_repeated_sigterm_is_the_same_stop(tiny_data_dir, tmp_path):
    """SIGTERM twice 50 ms apart, as a worker under `srun ... torchrun` gets it (SLURM, then torchrun's
    forwarding): one save, status 0, and the time from the request to the saved checkpoint logged.
    Before the fix the second SIGTERM killed the process: status -15 (143 in a shell), no checkpoint."""
    launch = Launch(train_command(tiny_data_dir, tmp_path, extra=["--max-update", "100000"]))
    assert launch.wait_for_update(3), launch.output[-3000:]
    launch.send(signal.SIGTERM)
    time.sleep(0.05)
    launch.send(signal.SIGTERM)
    assert launch.finish() == 0, launch.output[-3000:]
    stopped = int(STOPPED_AT.search(launch.output).group(1))
    assert saved_updates(tmp_path / "checkpoint_last.pt") == stopped
    assert launch.output.count("received SIGTERM") == 1
    seconds = float(STOP_TIME.search(launch.output).group(1))
    assert 0 < seconds < 30, launch.output[-3000:]  # torchrun's SIGKILL grace


def test_only_a_later_second_ctrl_c_escalates(monkeypatch):
    """The handler alone, on a fake clock: repeats of SIGTERM / SIGUSR1 never escalate; a SIGINT within
    FORWARDED_WITHIN_S of the first (torchrun forwarding it) does not; one after it does."""
    from spanbert_fairseq.patches import preemption

    now, escalated = [100.0], []
    monkeypatch.setattr(preemption.time, "time", lambda: now[0])
    monkeypatch.setattr(preemption.signal, "signal", lambda signum, handler: None)
    monkeypatch.setattr(preemption.signal, "raise_signal", escalated.append)
    monkeypatch.setattr(preemption._StopRequest, "training_pid", os.getpid())
    for first, repeats in ((signal.SIGTERM, (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)), (signal.SIGINT, ())):
        monkeypatch.setattr(preemption._StopRequest, "signum", None)
        preemption._on_stop_signal(first, None)
        assert preemption._StopRequest.signum == first and preemption._StopRequest.requested_at == now[0]
        for signum in repeats:
            now[0] += 5.0
            preemption._on_stop_signal(signum, None)
        assert escalated == []
    now[0] += preemption.FORWARDED_WITHIN_S / 2
    preemption._on_stop_signal(signal.SIGINT, None)
    assert escalated == []
    now[0] += preemption.FORWARDED_WITHIN_S
    preemption._on_stop_signal(signal.SIGINT, None)
    assert escalated == [signal.SIGINT]


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


def torchrun_command(data_dir, save_dir, max_update=MAX_UPDATE):
    """train_command's run as 2 gloo ranks under torchrun (batch 4 each: the same global batch)."""
    command = train_command(data_dir, save_dir, max_update, extra=["--distributed-backend", "gloo",
                                                                   "--ddp-backend", "legacy_ddp", "--batch-size", "4"])
    command[:2] = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                   "127.0.0.1", "--master-port", str(free_port()), "-m", "fairseq_cli.train"]
    return command


@pytest.mark.slow
def test_a_signal_to_one_rank_stops_all_ranks_at_the_same_update(tiny_data_dir, tmp_path):
    """torchrun, 2 CPU processes: SIGUSR1 to rank 1 alone; rank 0 must stop at the same update and save."""
    launch = Launch(torchrun_command(tiny_data_dir, tmp_path))
    assert launch.wait_for_update(6), launch.output[-3000:]
    os.kill(worker_pids(launch.proc.pid)[1], signal.SIGUSR1)
    assert launch.finish() == 0, launch.output[-3000:]
    stops = [int(m) for m in STOPPED_AT.findall(launch.output)]
    assert len(stops) == 2 and stops[0] == stops[1], launch.output[-3000:]
    assert saved_updates(tmp_path / "checkpoint_last.pt") == stops[0] < MAX_UPDATE


# torchrun turns a signal it handles into its own SignalException (a traceback), and exits 1 once its
# workers have exited; the workers' saves are what the test checks.
TORCHRUN_STATUS_AFTER_SIGTERM = 1
TORCHRUN_UPDATES = 8  # short: three 2-rank launches


@pytest.mark.slow
def test_sigterm_to_torchrun_and_every_worker_saves_once_and_resumes_exactly(tiny_data_dir, tmp_path):
    """Preemption under `srun ... torchrun`: SLURM sends SIGTERM to every process of the step (torchrun
    and both workers), and torchrun forwards it to its workers once more, then SIGKILLs them after its
    grace (30 s). Each worker thus gets SIGTERM twice, milliseconds apart. Exactly one checkpoint_last.pt,
    at the update both ranks stopped at; the resumed run ends bitwise equal to an uninterrupted one."""
    reference_dir, stopped_dir = tmp_path / "uninterrupted", tmp_path / "stopped"
    reference = run_to_end(torchrun_command(tiny_data_dir, reference_dir, TORCHRUN_UPDATES))
    assert reference.proc.returncode == 0, reference.output[-3000:]

    launch = Launch(torchrun_command(tiny_data_dir, stopped_dir, TORCHRUN_UPDATES))
    assert launch.wait_for_update(3), launch.output[-3000:]
    workers = worker_pids(launch.proc.pid)
    for pid in (*workers.values(), launch.proc.pid):  # the step's processes, in no particular order
        os.kill(pid, signal.SIGTERM)
    status = launch.finish()
    assert status == TORCHRUN_STATUS_AFTER_SIGTERM, launch.output[-3000:]
    assert launch.output.count("received SIGTERM") == 2, launch.output[-3000:]  # once per worker
    assert launch.output.count("Traceback") == 1  # torchrun's own; no worker failed
    assert "SIGKILL" not in launch.output  # torchrun's grace was not needed
    stops = {int(m) for m in STOPPED_AT.findall(launch.output)}
    assert len(stops) == 1 and len(STOP_TIME.findall(launch.output)) == 1, launch.output[-3000:]
    stopped = stops.pop()
    assert stopped < TORCHRUN_UPDATES
    assert [p.name for p in stopped_dir.iterdir() if "last" in p.name] == ["checkpoint_last.pt"]  # no temporary
    assert saved_updates(stopped_dir / "checkpoint_last.pt") == stopped

    resumed = run_to_end(torchrun_command(tiny_data_dir, stopped_dir, TORCHRUN_UPDATES))
    assert resumed.proc.returncode == 0, resumed.output[-3000:]
    assert f"@ {stopped} updates" in resumed.output, resumed.output[-3000:]
    want = load_state(reference_dir / "checkpoint_last.pt")
    got = load_state(stopped_dir / "checkpoint_last.pt")
    diff = differing_tensors(want["model"], got["model"]) + differing_tensors(
        want["last_optimizer_state"], got["last_optimizer_state"])
    assert not diff, f"{len(diff)} tensors differ after stop/resume under torchrun, e.g. {diff[:3]}"


@pytest.mark.slow
def test_sigusr1_to_torchrun_reaches_the_workers_with_the_recipes_settings(tiny_data_dir, tmp_path):
    """SLURM's --signal=USR1 to torchrun alone: with the recipes' PET_SIGNALS_TO_HANDLE torchrun forwards
    it to its workers, which save (torchrun's default list lacks SIGUSR1: it would die of it, status -10)."""
    os.environ["PET_SIGNALS_TO_HANDLE"] = "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"  # recipes/common.sh
    try:
        launch = Launch(torchrun_command(tiny_data_dir, tmp_path, TORCHRUN_UPDATES))
    finally:
        del os.environ["PET_SIGNALS_TO_HANDLE"]
    assert launch.wait_for_update(3), launch.output[-3000:]
    launch.send(signal.SIGUSR1)
    assert launch.finish() == TORCHRUN_STATUS_AFTER_SIGTERM, launch.output[-3000:]
    assert launch.output.count("received SIGUSR1") == 2, launch.output[-3000:]
    stops = {int(m) for m in STOPPED_AT.findall(launch.output)}
    assert len(stops) == 1 and saved_updates(tmp_path / "checkpoint_last.pt") == stops.pop() < TORCHRUN_UPDATES
