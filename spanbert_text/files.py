"""Atomic, durable file writes: a reader sees the old file or the whole new one, never a part.

Every file the project writes goes through `atomic_path`: write a temporary file in the same
directory, fsync it, `os.replace` it over the destination (atomic on POSIX), fsync the directory
so the rename survives a power cut. Some network and FUSE filesystems refuse to fsync a directory
(EINVAL, ENOTSUP, EBADF...): the file itself is fsynced before the rename, so that refusal is
tolerated and the rename is as durable as that filesystem makes it.
"""

import contextlib
import errno
import os

# What a filesystem answers when it cannot fsync a directory (network and FUSE mounts: EINVAL;
# others ENOTSUP/EOPNOTSUPP, or EBADF for a descriptor opened read-only). Any other error is real.
DIRECTORY_FSYNC_REFUSALS = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF})


def fsync_path(path):
    """Flush a file's (or a directory's) data to disk."""
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path):
    """fsync a directory so a rename in it survives a power cut, where the filesystem allows it."""
    try:
        fsync_path(path)
    except OSError as error:
        if error.errno not in DIRECTORY_FSYNC_REFUSALS:
            raise


def temporary_path(destination):
    """The temporary name beside `destination` (same directory: os.replace never crosses filesystems)."""
    directory, name = os.path.split(os.fspath(destination))
    return os.path.join(directory, f".{name}.tmp")


@contextlib.contextmanager
def atomic_path(destination):
    """Yields a temporary path to write; on success it replaces `destination`, on error it is removed."""
    destination = os.fspath(destination)
    temporary = temporary_path(destination)
    try:
        yield temporary
        fsync_path(temporary)
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    fsync_directory(os.path.dirname(destination))


def write_text(destination, text):
    with atomic_path(destination) as temporary, open(temporary, "w", encoding="utf-8") as f:
        f.write(text)


def save_figure(figure, destination, dpi=110):
    """A matplotlib figure to `destination`, atomically. The temporary name hides the extension
    from matplotlib, so the format is named from the destination's (PNG when it has none)."""
    with atomic_path(destination) as temporary:
        figure.savefig(temporary, dpi=dpi, format=os.path.splitext(os.fspath(destination))[1][1:] or "png")
