"""Reading raw text: files to documents, with errors that say where the input is bad.

Input format: one sentence or paragraph per line, a blank (or whitespace-only) line between
documents; the end of a file also ends a document. Files are plain UTF-8 or gzip (recognised by
their magic bytes, whatever the name). Windows line endings and a UTF-8 byte-order mark are
accepted. Files are read in large blocks cut at line ends, so a multi-MB line costs nothing extra.
"""

import codecs
import gzip
import os
import zlib
from dataclasses import dataclass

from . import PreprocessError

BLOCK_BYTES = 1 << 20  # small enough that bytes read tracks bytes tokenized (progress)
GZIP_MAGIC = b"\x1f\x8b"
_COUNTING_REPLACE = "spanbert_preprocess.replace"
_replacements = [0]  # bumped by the codec error handler below; read by TextReader


def _replace_and_count(err):
    _replacements[0] += 1
    return "\ufffd", err.end


codecs.register_error(_COUNTING_REPLACE, _replace_and_count)


@dataclass
class Document:
    lines: list  # non-blank lines, trailing "\r" removed
    path: str
    first_line: int  # 1-based line number of the document's first line in `path`


def check_input_files(paths):
    """Fail early, before any work, on a path that is not a readable file."""
    for path in paths:
        if not os.path.exists(path):
            raise PreprocessError(f"{path}: no such file")
        if not os.path.isfile(path):
            raise PreprocessError(f"{path}: not a regular file")
        if not os.access(path, os.R_OK):
            raise PreprocessError(f"{path}: permission denied")
        if os.path.getsize(path) == 0:
            raise PreprocessError(f"{path}: empty file")


def _open_binary(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")


def _blocks_of_whole_lines(f):
    """Yield byte blocks of `f` that end at a line end (the last one may not)."""
    pending = []
    while True:
        block = f.read(BLOCK_BYTES)
        if not block:
            break
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            pending.append(block)  # inside one long line: keep reading
            continue
        pending.append(block[:cut])
        yield b"".join(pending)
        pending = [block[cut:]]
    tail = b"".join(pending)
    if tail:
        yield tail


class TextReader:
    """Turns input files into Documents; counts what it read and what it replaced."""

    def __init__(self, encoding_errors="strict"):
        self.encoding_errors = encoding_errors
        self.bytes_read = 0
        self.replaced = 0  # invalid UTF-8 sequences replaced by U+FFFD
        self.first_replacement = None  # "file:line" of the first one

    def documents(self, paths):
        for path in paths:
            yield from self._file_documents(path)

    def _file_documents(self, path):
        lines, first_line, line_no, text_lines = [], 0, 0, 0
        for text in self._decoded_blocks(path):
            split = text.split("\n")
            if split[-1] == "":
                split.pop()  # the block's final line end, not a blank line
            for line in split:
                line_no += 1
                if line.strip():
                    if not lines:
                        first_line = line_no
                    lines.append(line[:-1] if line.endswith("\r") else line)
                    text_lines += 1
                elif lines:
                    yield Document(lines, path, first_line)
                    lines = []
        if lines:
            yield Document(lines, path, first_line)
        if line_no == 0:
            raise PreprocessError(f"{path}: empty file (expected one sentence or paragraph per line)")
        if text_lines == 0:
            raise PreprocessError(f"{path}: holds only blank lines ({line_no} lines), no text")

    def _decoded_blocks(self, path):
        offset, line_no = 0, 1  # of the current block's first byte
        try:
            with _open_binary(path) as f:
                for block in _blocks_of_whole_lines(f):
                    text = self._decode(block, path, offset, line_no)
                    if offset == 0 and text.startswith("\ufeff"):
                        text = text[1:]  # byte-order mark written by some Windows editors
                    offset += len(block)
                    line_no += block.count(b"\n")
                    self.bytes_read += len(block)
                    yield text
        except (OSError, EOFError, zlib.error) as e:
            raise PreprocessError(f"{path}: cannot read: {e}") from None

    def _decode(self, block, path, offset, line_no):
        try:
            return block.decode("utf-8")
        except UnicodeDecodeError as e:
            bad_line = line_no + block.count(b"\n", 0, e.start)
            where = f"{path}:{bad_line}"
            if self.encoding_errors == "strict":
                raise PreprocessError(
                    f"{where}: invalid UTF-8 byte 0x{block[e.start]:02x} at byte offset "
                    f"{offset + e.start} (pass --encoding-errors replace to substitute U+FFFD)"
                ) from None
            if self.first_replacement is None:
                self.first_replacement = where
            before = _replacements[0]
            text = block.decode("utf-8", errors=_COUNTING_REPLACE)
            self.replaced += _replacements[0] - before
            return text
