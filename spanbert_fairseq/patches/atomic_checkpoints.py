"""Crash-safe checkpoint files for fairseq 0.12 training.

Defect (fairseq/checkpoint_utils.py): `torch_persistent_save` renames a temporary file without
fsync, and `save_checkpoint` makes `checkpoint_last.pt` (and `_best`, `checkpointN`) with
`shutil.copyfile`, which truncates the destination and rewrites it in place: a SIGKILL during that
copy leaves a truncated `checkpoint_last.pt`, and the next run dies in `torch.load` ("failed
finding central directory").
Fix: every local checkpoint file, written or copied, goes through `spanbert_text.files.atomic_path`
(temporary file, fsync, `os.replace`, fsync of the directory).
"""

import shutil

from spanbert_text.files import atomic_path

from ..checkpoint_io import save_atomically
from .wrapping import wrap


def atomic_copy(source, destination):
    with atomic_path(destination) as temporary:
        shutil.copyfile(source, temporary)
    return True


def _make_atomic_path_manager(path_manager):
    class AtomicPathManager(path_manager):
        @staticmethod
        def copy(src_path, dst_path, overwrite=False):
            if path_manager.path_requires_pathmanager(dst_path):
                return path_manager.copy(src_path, dst_path, overwrite=overwrite)
            return atomic_copy(src_path, dst_path)

    return AtomicPathManager


def _make_persistent_save(original, path_manager):
    def torch_persistent_save(obj, filename, async_write=False):
        if async_write or not isinstance(filename, str) or path_manager.path_requires_pathmanager(filename):
            return original(obj, filename, async_write=async_write)
        return save_atomically(obj, filename)

    return torch_persistent_save


def install():
    from fairseq import checkpoint_utils

    wrap(checkpoint_utils, "PathManager", _make_atomic_path_manager)
    wrap(checkpoint_utils, "torch_persistent_save",
         lambda original: _make_persistent_save(original, checkpoint_utils.PathManager))
