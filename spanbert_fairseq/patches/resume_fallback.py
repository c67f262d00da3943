"""Resuming from a checkpoint that cannot be read, and rerunning a finished run.

Defects (fairseq/checkpoint_utils.py: load_checkpoint; fairseq_cli/train.py):
- a `checkpoint_last.pt` that is truncated or corrupt (a file from an older fairseq, a full disk, a
  tool that cut it) ends the run in `torch.load`, although older readable checkpoints sit beside it;
- a run resumed from a checkpoint already at --max-update trains one more update (the loop checks
  the limit only after a step), rewrites its checkpoints and reports success.
Fix: the resume falls back to the newest readable `checkpoint*.pt` in the save directory and says
which; a checkpoint at --max-update (or past --max-epoch) ends the command at once, with status 0
and a line saying the run is complete. The whole-file check runs where fairseq reads the checkpoint:
on data-parallel rank 0 only (Trainer.load_checkpoint reads it there and broadcasts the state), which
then tells the other ranks which file to resume from; on every rank only when fairseq loads on every
rank (--load-checkpoint-on-all-dp-ranks, sharded FSDP state).
"""

import copy
import logging
import os
import sys
import zipfile

from spanbert_text.errors import UserInputError

from ..checkpoint_io import safe_load
from .cli_errors import program_name
from .wrapping import wrap

logger = logging.getLogger(__name__)


def is_readable_checkpoint(path):
    """True if `path` is a complete checkpoint.

    torch's zip format is checked member by member (CRC), without unpickling; anything else (torch's
    legacy format, a truncated zip whose central directory is gone) must load with safe_load.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return archive.testzip() is None
        safe_load(path)
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


def _fallback(cfg, trainer):
    """(the checkpoint to resume from instead of cfg's, or None; an error message, or None)."""
    path = _resume_path(cfg, trainer)
    if not os.path.isfile(path) or is_readable_checkpoint(path):
        return None, None
    fallback = newest_readable_checkpoint(os.path.dirname(path) or ".", exclude=path)
    if fallback is None:
        return None, (f"cannot resume: checkpoint {path} is truncated or corrupt and no other readable "
                      f"checkpoint*.pt is in {os.path.dirname(path) or '.'}; delete it to start afresh")
    logger.warning("checkpoint %s is truncated or corrupt; resuming from %s, the newest readable checkpoint",
                   path, fallback)
    return fallback, None


def _loads_on_rank_0_only(trainer):
    """Whether fairseq's Trainer.load_checkpoint reads the file on rank 0 alone (its own conditions)."""
    if trainer.data_parallel_world_size == 1:
        return False
    cfg = trainer.cfg
    on_all_ranks = (cfg.checkpoint.load_checkpoint_on_all_dp_ranks or trainer.tpu
                    or (trainer.is_fsdp and cfg.distributed_training.use_sharded_state)
                    or getattr(cfg.model, "base_layers", 0) > 0)
    return not on_all_ranks


def _readable_resume_cfg(cfg, trainer):
    """cfg itself, or a copy whose restore_file is the newest readable checkpoint."""
    if _loads_on_rank_0_only(trainer):
        from fairseq.distributed import utils as distributed_utils

        decision = _fallback(cfg, trainer) if trainer.data_parallel_rank == 0 else None
        fallback, error = distributed_utils.broadcast_object(
            decision, src_rank=0, group=trainer.data_parallel_process_group, dist_device=trainer.device)
    else:
        fallback, error = _fallback(cfg, trainer)
    if error is not None:
        raise UserInputError(error)
    if fallback is None:
        return cfg
    fallback_cfg = copy.deepcopy(cfg)
    fallback_cfg.restore_file = fallback
    return fallback_cfg


def _exit_if_complete(trainer, epoch_itr):
    optimization = trainer.cfg.optimization
    updates, max_update = trainer.get_num_updates(), optimization.max_update
    if max_update and updates >= max_update:
        reason = f"its checkpoint is at update {updates}, --max-update is {max_update}"
    elif optimization.max_epoch and epoch_itr.next_epoch_idx > optimization.max_epoch:
        reason = f"its checkpoint finished epoch {epoch_itr.epoch}, --max-epoch is {optimization.max_epoch}"
    else:
        return
    print(f"{program_name()}: the run is complete ({reason}); nothing to train. Raise the limit to train on.",
          file=sys.stderr, flush=True)
    sys.exit(0)


def _make_load_checkpoint(original):
    def load_checkpoint(cfg, trainer, **passthrough_args):
        extra_state, epoch_itr = original(_readable_resume_cfg(cfg, trainer), trainer, **passthrough_args)
        if extra_state is not None:  # resumed: maybe already at the end
            _exit_if_complete(trainer, epoch_itr)
        return extra_state, epoch_itr

    return load_checkpoint


def install():
    from fairseq import checkpoint_utils

    wrap(checkpoint_utils, "load_checkpoint", _make_load_checkpoint)
