"""Stopping fairseq 0.12 training cleanly on a signal.

Defect (fairseq_cli/train.py): no handler for SIGTERM (SLURM's preemption, `scancel`, torchrun's
shutdown) or SIGUSR1 (SLURM's `--signal`): either ends the process at once, without a checkpoint;
Ctrl-C (SIGINT) ends it with a long traceback; both lose every update since the last save.
Fix: the first such signal asks training to save `checkpoint_last.pt` after the current update and
stop (all ranks at the same update); SIGTERM and SIGUSR1 then exit with status 0 (the scheduler
requeues), Ctrl-C with 130 and one line saying what was saved. A second identical signal ends the
process at once.
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

import torch

from .cli_errors import program_name
from .wrapping import wrap

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
INTERRUPTED_STATUS = 130


class _StopRequest:
    signum = None  # the first stop signal received
    training_pid = None  # forked data-loader workers inherit the handler; only this process acts


def _on_stop_signal(signum, frame):
    if os.getpid() != _StopRequest.training_pid:
        return
    if _StopRequest.signum == signum:
        # Second identical signal: the user (or scheduler) insists; die the default way.
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
        return
    _StopRequest.signum = signum
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # workers hit by the same signal may exit now
    again = "press Ctrl-C again" if signum == signal.SIGINT else "send it again"
    logger.warning(
        "received %s: will save checkpoint_last.pt after the current update and stop (%s to stop at once)",
        signal.Signals(signum).name, again,
    )


def _stop_requested_on_any_rank(trainer):
    requested = _StopRequest.signum is not None
    if trainer.data_parallel_world_size > 1:
        # Ranks get the signal at different updates; all must stop at the same one or they hang.
        from fairseq.distributed import utils as distributed_utils

        flag = torch.tensor([float(requested)], device=trainer.device)
        flag = distributed_utils.all_reduce(flag, group=trainer.data_parallel_process_group)
        requested = flag.item() > 0
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
