"""Stopping fairseq 0.12 training cleanly on a signal.

Defect (fairseq_cli/train.py): no handler for SIGTERM (SLURM's preemption, `scancel`, torchrun's
shutdown) or SIGUSR1 (SLURM's `--signal`): either ends the process at once, without a checkpoint;
Ctrl-C (SIGINT) ends it with a long traceback; both lose every update since the last save.
Fix: the first such signal asks training to save `checkpoint_last.pt` after the current update and
stop (all ranks at the same update); SIGTERM and SIGUSR1 then exit with status 0 (the scheduler
requeues), Ctrl-C with 130 and one line saying what was saved. Repeated SIGTERM / SIGUSR1 change
nothing: under `srun ... torchrun` SLURM signals every process of the step and torchrun forwards
the signal to its workers again, so a worker sees it twice within milliseconds. Only a second
Ctrl-C ends the process at once. The time from the request to the saved checkpoint is logged in
one line, to set against torchrun's SIGKILL grace and SLURM's `--signal` lead (docs/reliability.md).
A signal sent to the whole process group (Ctrl-C, `kill -TERM -PGID`, a scheduler) also reaches
the data-loader workers, which exit; torch's SIGCHLD handler would then fail the training process
before it saves. Once a stop is requested no more data is read (the stop skips validation), so
the workers' exit no longer matters and that handler is set aside.
"""

import copy
import logging
import os
import signal
import sys
import threading
import time

import torch

from .cli_errors import program_name
from .wrapping import wrap

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
# A Ctrl-C in a terminal reaches torchrun and its workers, and torchrun forwards it within a
# millisecond or two (measured): a SIGINT this soon after the first is that copy, not a second press.
FORWARDED_WITHIN_S = 0.25
INTERRUPTED_STATUS = 130


class _StopRequest:
    signum = None  # the first stop signal received
    requested_at = None  # time.time() of that signal, or of learning that another rank got one
    training_pid = None  # forked data-loader workers inherit the handler; only this process acts


def _on_stop_signal(signum, frame):
    if os.getpid() != _StopRequest.training_pid:
        return
    if _StopRequest.signum is not None:
        pressed_again = time.time() - _StopRequest.requested_at >= FORWARDED_WITHIN_S
        if signum == signal.SIGINT == _StopRequest.signum and pressed_again:
            # A second Ctrl-C: the user insists; die the default way.
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        return  # the same stop, requested again (SLURM and torchrun both forward it)
    _StopRequest.signum, _StopRequest.requested_at = signum, time.time()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # workers hit by the same signal may exit now
    again = "press Ctrl-C again to stop at once" if signum == signal.SIGINT else "repeats are ignored"
    logger.warning(
        "received %s: will save checkpoint_last.pt after the current update and stop (%s)",
        signal.Signals(signum).name, again,
    )


def _clock(timestamp):
    return time.strftime("%H:%M:%S", time.localtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}"


def _log_stop_time(trainer):
    """One line on the saving rank: when the stop was asked for, when the checkpoint was saved."""
    if not trainer.should_save_checkpoint_on_current_rank:
        return
    saved_at = time.time()
    logger.warning(
        "stop requested at %s, checkpoint_last.pt saved at %s: %.1f s from request to saved checkpoint",
        _clock(_StopRequest.requested_at), _clock(saved_at), saved_at - _StopRequest.requested_at,
    )


def _stop_requested_on_any_rank(trainer):
    requested = _StopRequest.signum is not None
    if trainer.data_parallel_world_size > 1:
        # Ranks get the signal at different updates; all must stop at the same one or they hang.
        from fairseq.distributed import utils as distributed_utils

        flag = torch.tensor([float(requested)], device=trainer.device)
        flag = distributed_utils.all_reduce(flag, group=trainer.data_parallel_process_group)
        requested = flag.item() > 0
        if requested and _StopRequest.requested_at is None:
            _StopRequest.requested_at = time.time()
    return requested


def _make_validate_and_save(original):
    def validate_and_save(cfg, trainer, task, epoch_itr, valid_subsets, end_of_epoch):
        if not _stop_requested_on_any_rank(trainer):
            return original(cfg, trainer, task, epoch_itr, valid_subsets, end_of_epoch)
        updates = trainer.get_num_updates()
        cause = signal.Signals(_StopRequest.signum).name if _StopRequest.signum else "a signal to another rank"
        logger.warning("stopping at update %d (%s): saving checkpoint_last.pt", updates, cause)
        # fairseq's own stop path (stop_time_hours) saves and ends training cleanly; validation is
        # skipped, since a scheduler gives the save seconds, not minutes.
        stop_cfg = copy.deepcopy(cfg)
        stop_cfg.optimization.stop_time_hours = 1e-12
        stop_cfg.dataset.disable_validation = True
        result = original(stop_cfg, trainer, task, epoch_itr, valid_subsets, end_of_epoch)
        _log_stop_time(trainer)
        if _StopRequest.signum == signal.SIGINT:
            print(f"{program_name()}: interrupted at update {updates}; saved checkpoint_last.pt in "
                  f"{cfg.checkpoint.save_dir} (rerun the same command to resume)", file=sys.stderr, flush=True)
            sys.exit(INTERRUPTED_STATUS)
        return result

    return validate_and_save


def _train_modules():
    """fairseq_cli.train as imported (fairseq-train, fairseq-hydra-train) or run as `python -m`."""
    modules = [sys.modules.get("fairseq_cli.train")]
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == "fairseq_cli.train":
        modules.append(main)
    return [m for m in modules if m is not None and hasattr(m, "validate_and_save")]


def install():
    _StopRequest.training_pid = os.getpid()
    if threading.current_thread() is threading.main_thread():  # where Python allows handlers
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler, None):
                signal.signal(signum, _on_stop_signal)
    for module in _train_modules():
        wrap(module, "validate_and_save", _make_validate_and_save)
