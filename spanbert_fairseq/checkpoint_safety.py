"""Crash-safe checkpoints and clean preemption for fairseq 0.12 training.

What fairseq 0.12 does by itself (read from fairseq/checkpoint_utils.py and fairseq_cli/train.py):
- `torch_persistent_save` writes `<name>.tmp` and renames it over `<name>`, without fsync.
- `save_checkpoint` writes the first due file (e.g. `checkpoint_1_40.pt`) that way, then makes
  `checkpoint_last.pt` (and `checkpoint_best.pt`, `checkpointN.pt`) with `shutil.copyfile`, which
  truncates the destination and rewrites it in place. A SIGKILL during that copy leaves a truncated
  `checkpoint_last.pt`, and the next run dies in `torch.load` ("failed finding central directory").
- No handler for SIGTERM or SIGUSR1: either one ends the process at once, without a checkpoint.

This module, applied once when the plugin is imported, changes that inside fairseq's checkpoint module
only (users keep their flags):
- every local checkpoint file, written or copied, goes to a temporary file in the same directory, is
  fsynced, and replaces the destination with `os.replace` (atomic on POSIX); the directory is fsynced
  so that the rename itself survives a power cut;
- if the checkpoint to resume from cannot be read anyway (a file from an older run, a full disk, a
  tool that truncated it), resuming falls back to the newest readable checkpoint in the save
  directory and logs which one, instead of failing;
- SIGTERM and SIGUSR1 (SLURM's `--signal`, torchrun's forwarded SIGTERM) make training save
  `checkpoint_last.pt` after the current update and exit cleanly; a second identical signal ends the
  process at once.
"""

import copy
import logging
import os
import shutil
import signal
import sys
import zipfile

import torch

logger = logging.getLogger(__name__)

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def _fsync_directory(directory):
    fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary_path(destination):
    # Same directory as the destination so that os.replace never crosses a filesystem.
    directory, name = os.path.split(destination)
    return os.path.join(directory, f".{name}.tmp")


def _publish(temporary, destination):
    os.replace(temporary, destination)
    _fsync_directory(os.path.dirname(destination))


def atomic_torch_save(obj, destination):
    """torch.save to `destination` so that it holds either the old file or the whole new one."""
    temporary = _temporary_path(destination)
    with open(temporary, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    _publish(temporary, destination)


def atomic_copy(source, destination):
    temporary = _temporary_path(destination)
    shutil.copyfile(source, temporary)
    with open(temporary, "rb+") as f:
        os.fsync(f.fileno())
    _publish(temporary, destination)
    return True


def is_readable_checkpoint(path):
    """True if `path` is a complete checkpoint.

    torch's zip format is checked member by member (CRC), without unpickling; anything else (torch's
    legacy format, a truncated zip whose central directory is gone) must load with torch.load.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return archive.testzip() is None
        torch.load(path, map_location="cpu", weights_only=False)
        return True
    except Exception:  # noqa: BLE001 - any failure to read means "not a usable checkpoint"
        return False


def newest_readable_checkpoint(save_dir, exclude):
    """The most recently written readable `checkpoint*.pt` in save_dir other than `exclude`."""
    candidates = [
        os.path.join(save_dir, name)
        for name in os.listdir(save_dir)
        if name.startswith("checkpoint") and name.endswith(".pt")
    ]
    candidates = [p for p in candidates if os.path.abspath(p) != os.path.abspath(exclude)]
    candidates.sort(key=os.path.getmtime, reverse=True)
    for path in candidates:
        if is_readable_checkpoint(path):
            return path
        logger.warning("checkpoint %s is not readable either; skipping it", path)
    return None


def _resume_path(cfg, trainer):
    if cfg.restore_file == "checkpoint_last.pt":
        return os.path.join(cfg.save_dir, f"checkpoint_last{trainer.checkpoint_suffix}.pt")
    return cfg.restore_file


def _make_atomic_path_manager(path_manager):
    class AtomicPathManager(path_manager):
        @staticmethod
        def copy(src_path, dst_path, overwrite=False):
            if path_manager.path_requires_pathmanager(dst_path):
                return path_manager.copy(src_path, dst_path, overwrite=overwrite)
            return atomic_copy(src_path, dst_path)

    AtomicPathManager.spanbert_atomic = True
    return AtomicPathManager


def _make_persistent_save(original, path_manager):
    def torch_persistent_save(obj, filename, async_write=False):
        if async_write or not isinstance(filename, str) or path_manager.path_requires_pathmanager(filename):
            return original(obj, filename, async_write=async_write)
        return atomic_torch_save(obj, filename)

    torch_persistent_save.spanbert_atomic = True
    return torch_persistent_save


def _make_load_checkpoint(original):
    def load_checkpoint(cfg, trainer, **passthrough_args):
        install_preemption_handlers()
        path = _resume_path(cfg, trainer)
        if not os.path.isfile(path) or is_readable_checkpoint(path):
            return original(cfg, trainer, **passthrough_args)
        fallback = newest_readable_checkpoint(os.path.dirname(path) or ".", exclude=path)
        if fallback is None:
            raise RuntimeError(
                f"cannot resume: checkpoint {path} is truncated or corrupt and no other readable "
                f"checkpoint*.pt is in {os.path.dirname(path) or '.'}; delete it to start afresh"
            )
        logger.warning(
            "checkpoint %s is truncated or corrupt; resuming from %s, the newest readable checkpoint",
            path,
            fallback,
        )
        fallback_cfg = copy.deepcopy(cfg)
        fallback_cfg.restore_file = fallback
        return original(fallback_cfg, trainer, **passthrough_args)

    load_checkpoint.spanbert_fallback = True
    return load_checkpoint


class _PreemptionState:
    requested = None  # the signal number once one has arrived


def _on_preemption_signal(signum, frame):
    if _PreemptionState.requested == signum:
        # Second identical signal: the user (or scheduler) insists; die the default way.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _PreemptionState.requested = signum
    logger.warning(
        "received %s: will save checkpoint_last.pt after the current update and exit "
        "(send it again to exit at once)",
        signal.Signals(signum).name,
    )


def install_preemption_handlers():
    """SIGTERM/SIGUSR1 request a checkpoint and a clean exit; handlers set by others are kept."""
    import threading

    # Only inside fairseq's training loop (not e.g. a test process that loads a checkpoint), and only
    # where Python allows handlers.
    if not _train_modules() or threading.current_thread() is not threading.main_thread():
        return
    for signum in PREEMPTION_SIGNALS:
        if signal.getsignal(signum) in (signal.SIG_DFL, None):
            signal.signal(signum, _on_preemption_signal)
    _patch_train_loop()


def _stop_requested_on_any_rank(trainer):
    requested = _PreemptionState.requested is not None
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
        logger.warning(
            "stopping for preemption at update %d: saving checkpoint_last.pt",
            trainer.get_num_updates(),
        )
        # fairseq's own stop path (stop_time_hours) validates, saves and ends training cleanly.
        stop_cfg = copy.deepcopy(cfg)
        stop_cfg.optimization.stop_time_hours = 1e-12
        return original(stop_cfg, trainer, task, epoch_itr, valid_subsets, end_of_epoch)

    validate_and_save.spanbert_preemption = True
    return validate_and_save


def _train_modules():
    """fairseq_cli.train as imported (fairseq-train, fairseq-hydra-train) or run as `python -m`."""
    modules = [sys.modules.get("fairseq_cli.train")]
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == "fairseq_cli.train":
        modules.append(main)
    return [m for m in modules if m is not None and hasattr(m, "validate_and_save")]


def _patch_train_loop():
    for module in _train_modules():
        if not getattr(module.validate_and_save, "spanbert_preemption", False):
            module.validate_and_save = _make_validate_and_save(module.validate_and_save)


def patch_checkpoint_safety():
    """Install the atomic writes and the resume fallback into fairseq.checkpoint_utils (idempotent)."""
    from fairseq import checkpoint_utils

    if not getattr(checkpoint_utils.PathManager, "spanbert_atomic", False):
        checkpoint_utils.PathManager = _make_atomic_path_manager(checkpoint_utils.PathManager)
    if not getattr(checkpoint_utils.torch_persistent_save, "spanbert_atomic", False):
        checkpoint_utils.torch_persistent_save = _make_persistent_save(
            checkpoint_utils.torch_persistent_save, checkpoint_utils.PathManager
        )
    if not getattr(checkpoint_utils.load_checkpoint, "spanbert_fallback", False):
        checkpoint_utils.load_checkpoint = _make_load_checkpoint(checkpoint_utils.load_checkpoint)
