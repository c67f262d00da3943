"""Let fairseq 0.12's fp16 overflow handling run on a machine without CUDA.

`--fp16` / `--memory-efficient-fp16` train on CPU (the model is halved, the loss scaled), but when the
loss scaler detects an overflow, `Trainer.train_step` handles it with
`grad_norm = torch.tensor(0.0).cuda()`, which raises "Torch not compiled with CUDA enabled" and ends
training at the first overflow. On a machine without CUDA that `.cuda()` can do nothing but fail,
so during `train_step` there it returns the tensor unchanged; the overflow then takes fairseq's
own path: the update is skipped, the gradients are zeroed and the loss scale lowered.
"""

import contextlib
import functools

import torch


@contextlib.contextmanager
def _cuda_is_identity():
    original = torch.Tensor.cuda

    def cuda(self, *args, **kwargs):
        return self

    torch.Tensor.cuda = cuda
    try:
        yield
    finally:
        torch.Tensor.cuda = original


def _make_train_step(original):
    @functools.wraps(original)
    def train_step(self, *args, **kwargs):
        if torch.cuda.is_available():
            return original(self, *args, **kwargs)
        with _cuda_is_identity():
            return original(self, *args, **kwargs)

    train_step.spanbert_cpu_fp16 = True
    return train_step


def patch_fp16_overflow_on_cpu():
    """Install the train_step wrapper on fairseq's Trainer (idempotent)."""
    from fairseq.trainer import Trainer

    if not getattr(Trainer.train_step, "spanbert_cpu_fp16", False):
        Trainer.train_step = _make_train_step(Trainer.train_step)
