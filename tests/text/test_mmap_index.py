"""The fairseq mmap index format: our reader and writer against fairseq 0.12's own."""

import filecmp

import numpy as np
import pytest
from fairseq.data import indexed_dataset
from fairseq.data.indexed_dataset import MMapIndexedDataset, best_fitting_int_dtype

from spanbert_text import mmap_index


@pytest.mark.parametrize("size", [0, 1, 65_499, 65_500, 70_001, 4_294_967_294, 4_294_967_295, 1 << 40])
def test_dtype_choice_is_fairseqs(size):
    assert mmap_index.best_fitting_int_dtype(size) is best_fitting_int_dtype(size)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int64])
def test_index_matches_fairseq_index_writer(tmp_path, dtype):
    sizes = np.array([3, 1, 0, 70_000, 2], dtype=np.int32)
    mmap_index.write_index(str(tmp_path / "ours.idx"), dtype, sizes)
    with MMapIndexedDataset.Index.writer(str(tmp_path / "theirs.idx"), dtype) as index:
        index.write(sizes.tolist())
    assert filecmp.cmp(tmp_path / "ours.idx", tmp_path / "theirs.idx", shallow=False)
    assert mmap_index.DTYPE_TO_CODE[dtype] == indexed_dataset._dtype_header_code(dtype)


def test_reader_knows_every_dtype_code_fairseq_writes():
    assert mmap_index.CODE_TO_DTYPE == indexed_dataset._code_to_dtype


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int64])
def test_reader_reads_fairseqs_index(tmp_path, dtype):
    sizes = [3, 1, 0, 70_000, 2]
    with MMapIndexedDataset.Index.writer(str(tmp_path / "theirs.idx"), dtype) as index:
        index.write(sizes)
    read_dtype, read_sizes, pointers = mmap_index.read_index(tmp_path / "theirs.idx")
    assert read_dtype is dtype and read_sizes.tolist() == sizes
    assert pointers.tolist() == (np.cumsum([0] + sizes[:-1]) * np.dtype(dtype).itemsize).tolist()


def test_reader_refuses_a_file_that_is_not_an_index(tmp_path):
    (tmp_path / "x.idx").write_bytes(b"not an index at all")
    with pytest.raises(mmap_index.BinaryDataError, match="not a fairseq mmap index"):
        mmap_index.read_index(tmp_path / "x.idx")
