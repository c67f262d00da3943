"""Atomic, durable file writes: a reader sees the old file or the whole new one, never a part.

Every file the project writes goes through `atomic_path`: write a temporary file in the same
directory, fsync it, `os.replace` it over the destination (atomic on POSIX), fsync the directory
so the rename survives a power cut.
"""

import contextlib
import os


def fsync_path(path):
    """Flush a file's (or a directory's) data to disk."""
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    fsync_path(os.path.dirname(destination))


def write_text(destination, text):
    with atomic_path(destination) as temporary, open(temporary, "w", encoding="utf-8") as f:
        f.write(text)


def save_figure(figure, destination, dpi=110):
    """A matplotlib figure to `destination`, atomically. The temporary name hides the extension
    from matplotlib, so the format is named from the destination's (PNG when it has none)."""
    with atomic_path(destination) as temporary:
        figure.savefig(temporary, dpi=dpi, format=os.path.splitext(os.fspath(destination))[1][1:] or "png")
