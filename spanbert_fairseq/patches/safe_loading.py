"""fairseq 0.12 reads checkpoints with a bare `torch.load(f, map_location=...)`.

Defect: under torch < 2.6 that is a full unpickler, which runs whatever code a checkpoint names;
under torch >= 2.6 it is the restricted unpickler without the types fairseq's own files hold
(`argparse.Namespace`, numpy scalars), so older checkpoints fail with "Unsupported global".
Fix: fairseq's checkpoint module (and only it) gets a `torch` whose `load` is
`checkpoint_io.safe_load`: restricted, with the allowlist, refusing anything else in one line.
Covers fairseq-train's resume and --restore-file, fairseq-validate, fairseq-generate.
"""

import types

import torch

from ..checkpoint_io import safe_load
from .wrapping import wrap


class _TorchWithSafeLoad(types.ModuleType):
    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, **_ignored):
        return safe_load(getattr(f, "name", f), map_location=map_location)


def install():
    from fairseq import checkpoint_utils

    wrap(checkpoint_utils, "torch", lambda original: _TorchWithSafeLoad("torch"))
