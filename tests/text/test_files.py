"""spanbert_text.files: a filesystem that refuses to fsync a directory (network and FUSE mounts
answer EINVAL) does not fail the write; the file itself is still fsynced, and other errors still raise."""

import errno
import os
import stat

import pytest

from spanbert_text import files


def refusing_directory_fsync(monkeypatch, code):
    """os.fsync that fails with `code` on a directory and records which kinds of descriptor it saw."""
    real_fsync, seen = os.fsync, []

    def fsync(fd):
        is_directory = stat.S_ISDIR(os.fstat(fd).st_mode)
        seen.append("directory" if is_directory else "file")
        if is_directory:
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


# A set: ENOTSUP is EOPNOTSUPP on Linux.
@pytest.mark.parametrize("code", sorted({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF}))
def test_a_refused_directory_fsync_is_tolerated(tmp_path, monkeypatch, code):
    seen = refusing_directory_fsync(monkeypatch, code)
    destination = tmp_path / "checkpoint_last.pt"
    destination.write_text("old")
    files.write_text(destination, "new")
    assert destination.read_text() == "new"
    assert seen == ["file", "directory"]  # the file was fsynced before the rename; the directory was tried
    assert os.listdir(tmp_path) == ["checkpoint_last.pt"]  # no temporary file left


def test_other_directory_fsync_errors_still_raise(tmp_path, monkeypatch):
    refusing_directory_fsync(monkeypatch, errno.EIO)
    with pytest.raises(OSError) as raised:
        files.write_text(tmp_path / "dict.txt", "a 1\n")
    assert raised.value.errno == errno.EIO


def test_a_refused_file_fsync_still_raises_and_leaves_the_destination(tmp_path, monkeypatch):
    def fsync(fd):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    destination = tmp_path / "dict.txt"
    destination.write_text("old")
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError):
        files.write_text(destination, "new")
    assert destination.read_text() == "old" and os.listdir(tmp_path) == ["dict.txt"]
