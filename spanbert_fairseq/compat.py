"""What the plugin changes in fairseq 0.12 when it is imported, all in one list (`apply_fairseq_patches`).

Each patch is contained to the fairseq function it fixes and is idempotent; users change no flags.
"""

import contextlib
import logging
import types

import torch


class _TorchForTrustedCheckpoints(types.ModuleType):
    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(*args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return torch.load(*args, **kwargs)


@contextlib.contextmanager
def root_logging_kept():
    """Undo what importing fairseq 0.12 does to the root logger: `logging.basicConfig(level=DEBUG)`
    in wav2vec2_classification (INFO in the speech tasks), which made every library's debug lines
    print for anyone who imports the plugin. (fairseq-train has imported fairseq before the plugin,
    so there this changes nothing.)"""
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def apply_fairseq_patches():
    from .checkpoint_safety import patch_checkpoint_safety
    from .cli_errors import install_cli_error_hook
    from .cpu_fp16 import patch_fp16_overflow_on_cpu

    patch_fairseq_checkpoint_loading()  # torch >= 2.6 loads fairseq's own checkpoints again
    patch_checkpoint_safety()  # atomic checkpoint writes, resume fallback, clean preemption
    patch_fp16_overflow_on_cpu()  # an fp16 overflow on CPU skips the update instead of crashing
    install_cli_error_hook()  # fairseq-train prints the plugin's input errors as one line
    patch_fairseq_torchrun_launch()  # ranks from torchrun's environment, on CPU and across nodes


def patch_fairseq_checkpoint_loading():
    """torch 2.6 made `torch.load(weights_only=True)` the default; fairseq checkpoints pickle
    argparse.Namespace and omegaconf configs, so loading failed with "Unsupported global". The
    checkpoints fairseq reads are the user's own training state, so fairseq's checkpoint module
    (and only it) gets a `torch` whose `load` defaults to `weights_only=False`.
    """
    from fairseq import checkpoint_utils

    if not isinstance(checkpoint_utils.torch, _TorchForTrustedCheckpoints):
        checkpoint_utils.torch = _TorchForTrustedCheckpoints("torch")


def patch_fairseq_torchrun_launch():
    """Let fairseq 0.12 take its ranks from torchrun, on CPU too and across nodes.

    fairseq reads torchrun's environment only when --distributed-world-size > 1, whose default is
    the number of GPUs (1 on a CPU machine), and then sets device_id = RANK % cuda.device_count(),
    which divides by zero without GPUs. Under torchrun (RANK, WORLD_SIZE, MASTER_ADDR/PORT set)
    this takes world size and rank from the environment and the device from LOCAL_RANK, so
    `torchrun ... fairseq-train ...` needs no extra distributed flags.
    """
    import os

    from fairseq.distributed import utils as distributed_utils

    if hasattr(distributed_utils.infer_init_method, "__wrapped_fairseq__"):
        return  # already patched
    original = distributed_utils.infer_init_method

    def infer_init_method(cfg, force_distributed=False):
        torchrun_env = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK")
        if cfg.distributed_init_method is None and all(k in os.environ for k in torchrun_env):
            cfg.distributed_init_method = "env://"
            cfg.distributed_world_size = int(os.environ["WORLD_SIZE"])
            cfg.distributed_rank = int(os.environ["RANK"])
            cfg.device_id = int(os.environ["LOCAL_RANK"])
            cfg.distributed_no_spawn = True  # torchrun started the processes
            return
        original(cfg, force_distributed)

    infer_init_method.__wrapped_fairseq__ = original
    distributed_utils.infer_init_method = infer_init_method
