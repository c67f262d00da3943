import importlib.util
from pathlib import Path

import pytest

# tests/ is not a package: load the corpus builders of tests/data by path.
_spec = importlib.util.spec_from_file_location(
    "_spanbert_tests_corpus", Path(__file__).parent.parent / "data" / "corpus.py"
)
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)


@pytest.fixture(scope="session")
def task_data_dir(tmp_path_factory, bert_vocab, stdlib_documents):
    """A WordPiece data directory: dict.txt, train and valid binaries."""
    out, _ = corpus.make_wordpiece_data_dir(tmp_path_factory.mktemp("task"), bert_vocab, stdlib_documents)
    return out


@pytest.fixture(scope="session")
def sharded_data_dir(tmp_path_factory, bert_vocab, stdlib_documents):
    """DIR/shard0 (train from the first half of the documents, valid) and DIR/shard1 (train, second half)."""
    root = tmp_path_factory.mktemp("shards")
    half = len(stdlib_documents) // 2
    corpus.make_wordpiece_data_dir(root / "shard0", bert_vocab, stdlib_documents[:half], n_valid=5)
    corpus.make_wordpiece_data_dir(root / "shard1", bert_vocab, stdlib_documents[half:], n_valid=5)
    (root / "shard1" / "valid.bin").unlink()
    (root / "shard1" / "valid.idx").unlink()
    return root
