"""Let fairseq 0.12's `--fp16` and `--memory-efficient-fp16` train on a machine without CUDA.

Defects (fairseq/trainer.py, fairseq/optim/fp16_optimizer.py), where torch has no CUDA:
- `--fp16` builds its flat fp32 master copy keyed by `torch.cuda.current_device()`, which raises
  "Torch not compiled with CUDA enabled" before the first update;
- when the loss scaler detects an overflow, `Trainer.train_step` sets
  `grad_norm = torch.tensor(0.0).cuda()`, which raises the same and ends training at the first
  overflow instead of skipping the update.
Fix, only where CUDA is unavailable: the master copy is kept per parameter (fairseq's own
`--fp16-no-flatten-grads` layout), and during `train_step` `Tensor.cuda` returns the tensor
unchanged, so an overflow takes fairseq's own path: the update is skipped, the gradients are
zeroed and the loss scale lowered. Installed in training processes only.
"""

import contextlib
import copy
import functools

import torch

from .wrapping import wrap


@contextlib.contextmanager
def _cuda_is_identity():
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


def _make_train_step(original):
    @functools.wraps(original)
    def train_step(self, *args, **kwargs):
        with _cuda_is_identity():
            return original(self, *args, **kwargs)

    return train_step


def _make_build_optimizer(original):
    def build_optimizer(cls, cfg, params, **kwargs):
        cfg = copy.deepcopy(cfg)
        cfg.common.fp16_no_flatten_grads = True
        return original(cfg, params, **kwargs)

    return classmethod(build_optimizer)


def install():
    if torch.cuda.is_available():
        return
    from fairseq.optim.fp16_optimizer import FP16Optimizer
    from fairseq.trainer import Trainer

    wrap(Trainer, "train_step", _make_train_step)
    wrap(FP16Optimizer, "build_optimizer", _make_build_optimizer)
