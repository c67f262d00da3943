"""Make fairseq 0.12 checkpoint loading work under torch >= 2.6.

torch 2.6 made `torch.load(weights_only=True)` the default; fairseq checkpoints pickle
argparse.Namespace and omegaconf configs, so loading failed with "Unsupported global". The
checkpoints fairseq reads are the user's own training state, so fairseq's checkpoint module
(and only it) gets a `torch` whose `load` defaults to `weights_only=False`.
"""

import types

import torch


class _TorchForTrustedCheckpoints(types.ModuleType):
    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(*args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return torch.load(*args, **kwargs)


def patch_fairseq_checkpoint_loading():
    from fairseq import checkpoint_utils

    if not isinstance(checkpoint_utils.torch, _TorchForTrustedCheckpoints):
        checkpoint_utils.torch = _TorchForTrustedCheckpoints("torch")

    from .checkpoint_safety import patch_checkpoint_safety

    patch_checkpoint_safety()  # atomic checkpoint writes, resume fallback, clean preemption
