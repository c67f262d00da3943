"""Writing fairseq mmap datasets in bulk, and putting a finished output directory in place.

The .bin holds the items back to back in fairseq's dtype for the vocabulary size; the .idx is
fairseq's mmap index, written here without importing fairseq (which would import torch and cost
seconds a run). Items: one per line (its ids, then eos), and between two documents an item
holding eos alone -- byte for byte what `fairseq-preprocess --only-source --dataset-impl mmap`
writes from the same pieces.
"""

import os
import re
import shutil
import tempfile

import numpy as np

from spanbert_text.files import fsync_directory, fsync_path
from spanbert_text.mmap_index import best_fitting_int_dtype, write_index
from spanbert_text.split_stamp import write_stamp
from spanbert_text.vocabulary import Vocabulary, VocabularyError

from . import PreprocessError

OUTPUT_FILES = ("train.bin", "train.idx", "train.stamp.json", "valid.bin", "valid.idx", "valid.stamp.json",
                "train.pieces", "valid.pieces", "vocab.txt", "tokenizer.json", "spm.model")
SHARD_DIR = re.compile(r"shard\d+$")
BOUNDARY = -1  # marks a document-boundary item in an item list


def _concat_ranges(starts, lengths):
    """The concatenation of arange(s, s + l) over (starts, lengths), without a Python loop."""
    ends = np.cumsum(lengths)
    return np.repeat(starts - (ends - lengths), lengths) + np.arange(ends[-1] if len(ends) else 0)


class DatasetWriter:
    """One split of one shard: PREFIX.bin, PREFIX.idx and the stamp that lets the reader skip a scan."""

    def __init__(self, prefix, dictionary, write_pieces=False):
        self.prefix, self.eos, self.unk = prefix, dictionary.eos(), dictionary.unk()
        self.vocabulary = dictionary.symbols
        self.dtype = best_fitting_int_dtype(len(dictionary))  # fairseq-preprocess's choice
        self.data = open(prefix + ".bin", "wb")
        # PREFIX.pieces: the same text as space-separated word pieces, a blank line between
        # documents: what stock fairseq-preprocess reads (docs/preprocess.md).
        self.pieces, self.symbols = None, None
        if write_pieces:
            self.pieces = open(prefix + ".pieces", "w", encoding="utf-8")
            self.symbols = np.array(dictionary.symbols, dtype=object)
        self.sizes = []  # int32 arrays, one per call: 4 bytes a line, not a Python int
        self.documents = self.tokens = self.unknown = 0
        self.counts = np.zeros(len(dictionary), dtype=np.int64)  # of every id written, eos included

    def add_documents(self, documents, flat, offsets, lengths):
        """Append documents, each an int array of line indices into (flat, offsets, lengths)."""
        if not documents:
            return
        if self.pieces is not None:
            self._write_pieces(documents, flat, offsets, lengths)
        items = []
        for line_indices in documents:
            if self.documents:
                items.append(np.array([BOUNDARY]))
            items.append(line_indices)
            self.documents += 1
        items = np.concatenate(items)
        # A boundary's index (-1) picks some line's length and offset; its token count is set to 0.
        token_counts = np.where(items != BOUNDARY, lengths[items], 0)
        sizes = token_counts + 1  # each item ends with eos
        item_starts = np.cumsum(sizes) - sizes
        out = np.full(int(sizes.sum()), self.eos, dtype=self.dtype)
        out[_concat_ranges(item_starts, token_counts)] = flat[_concat_ranges(offsets[items], token_counts)]
        self.data.write(out.tobytes(order="C"))
        self.sizes.append(sizes.astype(np.int32))
        self.tokens += int(token_counts.sum())
        self.unknown += int(np.count_nonzero(out == self.unk))
        self.counts += np.bincount(out, minlength=len(self.counts))

    def _write_pieces(self, documents, flat, offsets, lengths):
        for number, line_indices in enumerate(documents, start=self.documents):
            lines = (" ".join(self.symbols[flat[offsets[i] : offsets[i] + lengths[i]]]) for i in line_indices)
            self.pieces.write(("\n" if number else "") + "".join(line + "\n" for line in lines))

    def close(self):
        self.data.close()
        if self.pieces is not None:
            self.pieces.close()
        sizes = np.concatenate(self.sizes) if self.sizes else np.zeros(0, dtype=np.int32)
        write_index(self.prefix + ".idx", self.dtype, sizes)
        written = np.flatnonzero(self.counts)
        write_stamp(self.prefix, self.vocabulary, len(sizes), int(self.counts.sum()),
                    int(written[-1]) if len(written) else 0)


def existing_symbols(directory):
    """Symbols of the dict.txt files already in an output directory (None if it holds none)."""
    paths = [os.path.join(directory, "dict.txt")]
    if os.path.isdir(directory):
        paths += [
            os.path.join(directory, d, "dict.txt") for d in sorted(os.listdir(directory)) if SHARD_DIR.match(d)
        ]
    found = [p for p in paths if os.path.exists(p)]
    if not found:
        return None
    symbols = set()
    for path in found:
        try:
            symbols.add(tuple(Vocabulary.load(path).symbols))
        except (VocabularyError, OSError):
            symbols.add(("<unreadable>", path))
    return symbols


def holds_binaries(directory):
    if not os.path.isdir(directory):
        return False
    return any(n.endswith((".bin", ".idx")) or SHARD_DIR.match(n) for n in os.listdir(directory))


def check_output_dir(directory, dictionary, force):
    """Refuse to mix our binaries with another vocabulary's unless --force."""
    if force:
        return
    symbols = existing_symbols(directory)
    if symbols is None:
        if holds_binaries(directory):
            raise PreprocessError(
                f"{directory}: holds binaries without a dict.txt (unknown vocabulary); "
                "choose another --destdir or pass --force to replace them"
            )
        return
    if symbols != {tuple(dictionary.symbols)}:
        raise PreprocessError(
            f"{directory}: holds binaries of another vocabulary (its dict.txt differs); "
            "choose another --destdir or pass --force to replace them"
        )


class StagedOutput:
    """A temporary directory beside the destination, moved into place only when complete.

    A crash leaves only the hidden `.NAME.tmp-*` directory, never a half-written destination.
    """

    def __init__(self, destination):
        self.destination = os.path.abspath(destination)
        parent, name = os.path.split(self.destination)
        os.makedirs(parent, exist_ok=True)
        self.path = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.path, 0o777 & ~umask)  # mkdtemp's 0700 would outlive the rename

    def discard(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def commit(self):
        for directory, _, names in os.walk(self.path):  # durable before it becomes visible
            for name in names:
                fsync_path(os.path.join(directory, name))
        self._move_into_place()
        fsync_directory(os.path.dirname(self.destination))

    def _move_into_place(self):
        dest = self.destination
        if os.path.isdir(dest) and not os.listdir(dest):
            os.rmdir(dest)
        if not os.path.exists(dest):
            os.rename(self.path, dest)
            return
        # The destination holds our earlier output (same vocabulary, or --force) and maybe
        # files of the user's: drop our old files (dict.txt first so nothing old still loads),
        # then move the new ones in with dict.txt last.
        _remove_outputs(dest)
        names = sorted(os.listdir(self.path), key=lambda n: n == "dict.txt")
        for name in names:
            os.rename(os.path.join(self.path, name), os.path.join(dest, name))
        os.rmdir(self.path)


def _remove_outputs(directory):
    dict_path = os.path.join(directory, "dict.txt")
    if os.path.exists(dict_path):
        os.remove(dict_path)
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if SHARD_DIR.match(name) and os.path.isdir(path):
            shutil.rmtree(path)
        elif name in OUTPUT_FILES:
            os.remove(path)
