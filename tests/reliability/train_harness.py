"""Run fairseq-train on the tiny data in a subprocess, and kill it where a test says."""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ENTRY = HERE / "fault_injection.py"  # fairseq-train, with an optional kill-during-write fault
UPDATE = re.compile(r"num_updates[=\s|]+(\d+)")

# The settings under which a killed and resumed run is bitwise equal to an uninterrupted one (see
# docs/reliability.md): one process, one thread, no dataloader workers, a checkpoint every few updates.
DETERMINISTIC_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


# The tiny data packs into 26 updates per epoch; runs stop in epoch 2, so resumes can cross an epoch.
MAX_UPDATE = 40
UPDATES_PER_EPOCH = 26


def train_command(data_dir, save_dir, max_update=MAX_UPDATE, extra=()):
    return [
        sys.executable, str(ENTRY), str(data_dir),
        "--user-dir", str(REPO / "spanbert_fairseq"),
        "--task", "span_bert", "--criterion", "span_bert", "--arch", "spanbert_tiny",
        "--tokens-per-sample", "64", "--batch-size", "8",
        "--optimizer", "adam", "--lr", "1e-3", "--clip-norm", "1.0",
        "--lr-scheduler", "polynomial_decay", "--warmup-updates", "5", "--total-num-update", str(max_update),
        "--max-update", str(max_update),
        "--save-dir", str(save_dir), "--save-interval-updates", "4",
        "--num-workers", "0", "--cpu", "--seed", "3",
        "--log-format", "simple", "--log-interval", "1", "--no-progress-bar",
        *extra,
    ]  # fmt: skip


def _default_interrupt():
    # A process started in the background of a non-interactive shell inherits SIGINT ignored, and
    # fairseq-train then rightly leaves it ignored; a terminal's Ctrl-C reaches a default handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Launch:
    """One fairseq-train process in a process group of its own: its output lines and how it ended.

    A thread reads the output, so every wait below has a deadline even when the process prints nothing.
    """

    def __init__(self, command, kill_during_write=None, timeout=240):
        env = {k: v for k, v in os.environ.items() if k != "SPANBERT_KILL_DURING_WRITE"}
        env.update(DETERMINISTIC_ENV)
        if kill_during_write:
            env["SPANBERT_KILL_DURING_WRITE"] = kill_during_write
        self.deadline = time.monotonic() + timeout
        self.lines, self._unread = [], queue.Queue()
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True, preexec_fn=_default_interrupt,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self._unread.put(line)
        self._unread.put(None)  # end of output

    def updates_seen(self):
        return max((int(m.group(1)) for line in self.lines for m in [UPDATE.search(line)] if m), default=0)

    def wait_for_update(self, update):
        """Read output until a log line reports `update` updates; False if the process ended or the
        deadline passed first."""
        def reports_update(line):
            match = UPDATE.search(line)
            return match is not None and int(match.group(1)) >= update and "train_inner" in line

        return self.wait_for_line(reports_update)

    def wait_for_line(self, wanted):
        """Read output until `wanted(line)`; False if the process ended or the deadline passed first."""
        while (remaining := self.deadline - time.monotonic()) > 0:
            try:
                line = self._unread.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                self._unread.put(None)
                return False
            self.lines.append(line)
            if wanted(line):
                return True
        return False

    def send(self, signum):
        self.proc.send_signal(signum)

    def send_to_group(self, signum):
        """The signal to the process and its data-loader workers, as Ctrl-C or `kill -TERM -PGID` sends it."""
        os.killpg(self.proc.pid, signum)

    def finish(self):
        """Wait for the exit (killing the process group at the deadline); returns the exit status."""
        try:
            self.proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        while True:
            try:
                line = self._unread.get(timeout=30)  # workers that outlive the process hold the pipe
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return self.proc.returncode

    @property
    def output(self):
        return "".join(self.lines)


def run_to_end(command, kill_during_write=None):
    launch = Launch(command, kill_during_write)
    launch.finish()
    return launch


def kill_after_update(command, update, delay_s):
    """Start a run, SIGKILL it `delay_s` seconds after it logs `update` (so mid-update or between)."""
    launch = Launch(command)
    reached = launch.wait_for_update(update)
    if reached:
        time.sleep(delay_s)
        launch.send(signal.SIGKILL)
    launch.finish()
    return launch, reached


def load_state(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def differing_tensors(a, b, prefix=""):
    """Names of tensors that are not bitwise equal between two nested state structures."""
    if isinstance(a, torch.Tensor):
        same = isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        return [] if same else [prefix]
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            return [prefix + " (keys)"]
        return [d for k in a for d in differing_tensors(a[k], b[k], f"{prefix}.{k}")]
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            return [prefix + " (length)"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differing_tensors(x, y, f"{prefix}[{i}]")]
    return [] if a == b else [prefix]
