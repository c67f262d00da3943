"""The bulk writer against fairseq's own item-by-item MMapIndexedDatasetBuilder, on random documents."""

import filecmp

import numpy as np
import pytest
import torch
from fairseq.data.indexed_dataset import MMapIndexedDataset, MMapIndexedDatasetBuilder, best_fitting_int_dtype
from hypothesis import given, settings
from hypothesis import strategies as st

from spanbert_preprocess.binaries import DatasetWriter

EOS = 3


class FakeDictionary:
    def __init__(self, size):
        self.size = size
        self.symbols = [f"piece{i}" for i in range(size)]  # what the split stamp hashes

    def __len__(self):
        return self.size

    def eos(self):
        return EOS

    def unk(self):
        return 1


line = st.lists(st.integers(5, 70_000), min_size=1, max_size=6)  # ids past uint16 for a large vocabulary
document = st.lists(line, min_size=1, max_size=5)
batches = st.lists(st.lists(document, min_size=1, max_size=4), min_size=1, max_size=4)


def write_ours(prefix, batches_of_docs, vocab_size):
    writer = DatasetWriter(str(prefix), FakeDictionary(vocab_size))
    for docs in batches_of_docs:
        all_lines = [line for doc in docs for line in doc]
        lengths = np.array([len(line) for line in all_lines], dtype=np.int64)
        flat = np.array([t for line in all_lines for t in line], dtype=np.int64)
        offsets = np.cumsum(lengths) - lengths
        indices, start = [], 0
        for doc in docs:
            indices.append(np.arange(start, start + len(doc)))
            start += len(doc)
        writer.add_documents(indices, flat, offsets, lengths)
    writer.close()
    return writer


def write_fairseq(prefix, batches_of_docs, vocab_size):
    builder = MMapIndexedDatasetBuilder(f"{prefix}.bin", dtype=best_fitting_int_dtype(vocab_size))
    docs = [doc for batch in batches_of_docs for doc in batch]
    for i, doc in enumerate(docs):
        if i:
            builder.add_item(torch.IntTensor([EOS]))
        for line in doc:
            builder.add_item(torch.IntTensor(line + [EOS]))
    builder.finalize(f"{prefix}.idx")


def assert_same_files(tmp_path):
    for ext in ("bin", "idx"):
        assert filecmp.cmp(tmp_path / f"ours.{ext}", tmp_path / f"theirs.{ext}", shallow=False), ext


@settings(max_examples=60, deadline=None)
@given(batches_of_docs=batches, vocab_size=st.sampled_from([30_522, 70_001]))
def test_bulk_writer_matches_fairseq_builder(tmp_path_factory, batches_of_docs, vocab_size):
    if vocab_size < 65500:
        batches_of_docs = [[[[t % vocab_size for t in line] for line in doc] for doc in docs]
                           for docs in batches_of_docs]
    tmp = tmp_path_factory.mktemp("bin")
    writer = write_ours(tmp / "ours", batches_of_docs, vocab_size)
    write_fairseq(tmp / "theirs", batches_of_docs, vocab_size)
    assert_same_files(tmp)
    docs = [doc for batch in batches_of_docs for doc in batch]
    assert writer.documents == len(docs)
    assert writer.tokens == sum(len(line) for doc in docs for line in doc)


def test_uint16_for_bert_sized_vocabularies(tmp_path):
    docs = [[[5, 30_000, 7]], [[8, 9]]]
    write_ours(tmp_path / "ours", [docs], 30_522)
    write_fairseq(tmp_path / "theirs", [docs], 30_522)
    assert (tmp_path / "ours.bin").stat().st_size == 2 * (3 + 1 + 1 + 2 + 1)
    assert_same_files(tmp_path)


@pytest.mark.parametrize("vocab_size", [30_522, 70_001])
def test_empty_dataset_matches_fairseq_builder(tmp_path, vocab_size):
    write_ours(tmp_path / "ours", [], vocab_size)
    write_fairseq(tmp_path / "theirs", [], vocab_size)
    assert_same_files(tmp_path)
    assert len(MMapIndexedDataset.Index(str(tmp_path / "ours.idx"))) == 0  # fairseq cannot mmap the empty .bin


def test_uint32_for_vocabularies_past_65500(tmp_path):
    docs = [[[5, 70_000, 65_535, 65_536]], [[8], [9, 69_999]]]
    write_ours(tmp_path / "ours", [docs], 70_001)
    write_fairseq(tmp_path / "theirs", [docs], 70_001)
    assert_same_files(tmp_path)
    assert MMapIndexedDataset(str(tmp_path / "ours"))[0].tolist() == [5, 70_000, 65_535, 65_536, EOS]
