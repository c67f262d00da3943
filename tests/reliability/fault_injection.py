"""Kill a process with SIGKILL in the middle of writing a chosen checkpoint file.

Run as a script, it is `fairseq-train` with a fault armed from the environment:
    SPANBERT_KILL_DURING_WRITE="<name>:<n>"  SIGKILL itself half-way through the n-th write (1-based)
                                             of a file whose name contains <name>.
Writes are the two ways fairseq 0.12 puts checkpoint bytes on disk: `torch.save` into an open file and
`shutil.copyfile`. The process writes the first half of the bytes, then kills itself, so the file on
disk is exactly what a crash at that moment leaves behind.
"""

import io
import os
import shutil
import signal
import sys

import torch

ENV_VAR = "SPANBERT_KILL_DURING_WRITE"


class _Fault:
    def __init__(self, name, nth):
        self.name = name
        self.nth = nth
        self.seen = 0

    def due(self, path):
        if self.name not in os.path.basename(str(path)):
            return False
        self.seen += 1
        return self.seen == self.nth


def _die_after_half(payload, f):
    f.write(payload[: len(payload) // 2])
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install(name, nth):
    fault = _Fault(name, nth)
    real_save, real_copyfile = torch.save, shutil.copyfile

    def save(obj, f, *args, **kwargs):
        path = f if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "")
        if not fault.due(path):
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        if isinstance(f, (str, os.PathLike)):
            with open(f, "wb") as handle:
                _die_after_half(buffer.getvalue(), handle)
        _die_after_half(buffer.getvalue(), f)

    def copyfile(src, dst, *args, **kwargs):
        if not fault.due(dst):
            return real_copyfile(src, dst, *args, **kwargs)
        with open(src, "rb") as source, open(dst, "wb") as destination:
            _die_after_half(source.read(), destination)

    torch.save = save
    shutil.copyfile = copyfile


def install_from_env():
    spec = os.environ.get(ENV_VAR)
    if spec:
        name, nth = spec.rsplit(":", 1)
        install(name, int(nth))


if __name__ == "__main__":
    install_from_env()
    from fairseq_cli.train import cli_main

    sys.argv[0] = "fairseq-train"
    cli_main()
