"""Blocks: greedy packing of whole lines within documents; long lines split; no token lost."""

import numpy as np
import pytest
import torch

from spanbert_fairseq.data.binaries import TokenFile
from spanbert_fairseq.data.block_dataset import DocumentBlockDataset


def reference_blocks(documents, block_size):
    """Plain-Python statement of docs/data.md, "Blocks" (with the split of over-long lines)."""
    blocks = []
    for doc in documents:
        current = []
        for line in doc:
            line = list(line)
            if len(current) + len(line) > block_size:
                if current:
                    blocks.append(current)
                while len(line) > block_size:
                    blocks.append(line[:block_size])
                    line = line[block_size:]
                current = []
            current = current + line
        if current:
            blocks.append(current)
    return blocks


@pytest.mark.parametrize("block_size", [510, 126, 7])
def test_blocks_match_the_reference_packing(wordpiece_data, block_size):
    out, _, docs = wordpiece_data
    dataset = DocumentBlockDataset(TokenFile(str(out / "train")), block_size)
    expected = reference_blocks(docs, block_size)
    assert len(dataset) == len(expected)
    for i, want in enumerate(expected):
        assert dataset[i].tolist() == want, i
    assert list(dataset.sizes) == [len(b) for b in expected]
    assert max(dataset.sizes) <= block_size
    assert dataset[0].dtype == torch.int64


def test_no_token_lost_and_no_block_crosses_a_document(wordpiece_data):
    out, dictionary, docs = wordpiece_data
    dataset = DocumentBlockDataset(TokenFile(str(out / "train")), 510)
    assert dataset.stats["documents"] == len(docs)
    assert dataset.stats["tokens"] == sum(len(line) for doc in docs for line in doc)
    assert dataset.stats["split_lines"] == sum(len(line) > 510 for doc in docs for line in doc) > 0
    flat_blocks = np.concatenate([dataset[i].numpy() for i in range(len(dataset))])
    flat_docs = np.concatenate([line for doc in docs for line in doc])
    assert np.array_equal(flat_blocks, flat_docs)
    assert dictionary.eos() not in flat_blocks
    # Each block lies inside one document: walk blocks and documents together.
    doc_ends = np.cumsum([sum(len(line) for line in doc) for doc in docs])
    block_ends = np.cumsum(dataset.sizes)
    block_starts = block_ends - dataset.sizes
    doc_of_first = np.searchsorted(doc_ends, block_starts, side="right")
    doc_of_last = np.searchsorted(doc_ends, block_ends - 1, side="right")
    assert np.array_equal(doc_of_first, doc_of_last)


def test_blocks_survive_pickling_for_workers(wordpiece_data):
    import pickle

    out, _, _ = wordpiece_data
    dataset = DocumentBlockDataset(TokenFile(str(out / "train")), 510)
    dataset[0]  # maps the file
    payload = pickle.dumps(dataset)
    assert len(payload) < 200_000  # the token file travels as its path, not its contents
    assert pickle.loads(payload)[5].tolist() == dataset[5].tolist()
