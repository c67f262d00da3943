"""Fixtures of tests/reliability: a tiny span_bert data directory built as docs/DESIGN.md specifies."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# The helpers beside the tests (train_harness, fault_injection) import by name; pytest's importlib
# mode does not put test directories on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

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
    sep = vocab.index("[SEP]")
    write_split(out / "train", tokenized[:TRAIN_DOCUMENTS], new_id, sep)
    write_split(out / "valid", tokenized[TRAIN_DOCUMENTS:], new_id, sep)
    return out


@pytest.fixture(scope="session")
def uninterrupted_dir(tiny_data_dir, tmp_path_factory):
    """Save dir of one uninterrupted tiny run (train_harness settings): the reference for resumes."""
    from train_harness import run_to_end, train_command

    save_dir = tmp_path_factory.mktemp("uninterrupted")
    launch = run_to_end(train_command(tiny_data_dir, save_dir))
    assert launch.proc.returncode == 0, launch.output[-3000:]
    return save_dir
