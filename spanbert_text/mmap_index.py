"""fairseq 0.12's mmap index (`PREFIX.idx` beside `PREFIX.bin`): the one reader and writer of the format.

Layout (fairseq/data/indexed_dataset.py, MMapIndexedDataset.Index): a magic string, then
little-endian version (u64), dtype code (u8) and item count (u64); then every item's size in
tokens (int32) and every item's byte offset in the .bin (int64).
"""

import struct

import numpy as np

from .errors import UserInputError

INDEX_MAGIC = b"MMIDIDX\x00\x00"
INDEX_HEADER = struct.Struct("<QBQ")
INDEX_VERSION = 1
CODE_TO_DTYPE = {
    1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64,
    6: np.float64, 7: np.double, 8: np.uint16, 9: np.uint32, 10: np.uint64,
}
# The codes fairseq writes for the dtypes best_fitting_int_dtype picks (6 and 7 are both double).
DTYPE_TO_CODE = {np.uint16: 8, np.uint32: 9, np.int64: 5}


class BinaryDataError(UserInputError):
    """Binaries that cannot be used as they are; the message names the file."""


def best_fitting_int_dtype(vocab_size):
    """fairseq's token dtype for a vocabulary of `vocab_size` (indexed_dataset.best_fitting_int_dtype)."""
    if vocab_size < 65500:
        return np.uint16
    if vocab_size < 4294967295:
        return np.uint32
    return np.int64


def write_index(path, dtype, sizes):
    """The .idx of items of `sizes` tokens (int32 array) of `dtype`, stored back to back."""
    item_bytes = sizes.astype(np.int64) * np.dtype(dtype).itemsize
    with open(path, "wb") as f:
        f.write(INDEX_MAGIC + INDEX_HEADER.pack(INDEX_VERSION, DTYPE_TO_CODE[dtype], len(sizes)))
        f.write(sizes.tobytes())
        f.write((np.cumsum(item_bytes) - item_bytes).tobytes())


def read_index(path):
    """-> (dtype, sizes (items,) int32, pointers (items,) int64 byte offsets) of a fairseq mmap .idx."""
    with open(path, "rb") as f:
        header = f.read(len(INDEX_MAGIC) + INDEX_HEADER.size)
        if len(header) < len(INDEX_MAGIC) + INDEX_HEADER.size or not header.startswith(INDEX_MAGIC):
            raise BinaryDataError(f"{path}: not a fairseq mmap index (bad header); use --dataset-impl mmap")
        version, code, count = INDEX_HEADER.unpack(header[len(INDEX_MAGIC):])
        if version != INDEX_VERSION or code not in CODE_TO_DTYPE:
            raise BinaryDataError(f"{path}: unsupported index version {version} or dtype code {code}")
        body = np.fromfile(f, dtype=np.uint8)
    if body.size != count * 12:
        raise BinaryDataError(f"{path}: index is truncated ({body.size} bytes for {count} lines)")
    sizes = body[: count * 4].view(np.int32)
    pointers = body[count * 4 :].view(np.int64)
    return CODE_TO_DTYPE[code], sizes, pointers
