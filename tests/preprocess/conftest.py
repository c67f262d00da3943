"""Helpers for the spanbert-preprocess tests: write corpora, run the CLI in-process, read binaries back."""

import gzip
import os

import pytest
from fairseq.data.indexed_dataset import MMapIndexedDataset

from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_preprocess.cli import main


def corpus_text(docs, newline="\n"):
    return newline.join(newline.join(doc) + newline for doc in docs)


@pytest.fixture
def write_corpus():
    """write_corpus(path, docs, newline="\\n", gz=False) -> str(path)."""

    def write(path, docs, newline="\n", gz=False):
        data = corpus_text(docs, newline).encode("utf-8")
        opener = gzip.open if gz else open
        with opener(path, "wb") as f:
            f.write(data)
        return str(path)

    return write


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def run_cli(capsys):
    """Run spanbert-preprocess in this process; return its exit code, stdout and stderr."""

    def run(*argv):
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def _read_documents(prefix, dictionary):
    """The split at `prefix` as documents, each a list of lines, each a list of word pieces.

    Asserts the item layout: every item ends with eos, an eos-only item separates documents.
    """
    dataset = MMapIndexedDataset(str(prefix))
    eos = dictionary.eos()
    docs, doc = [], []
    for i in range(len(dataset)):
        ids = dataset[i].tolist()
        assert ids and ids[-1] == eos, f"item {i} does not end with eos"
        if len(ids) == 1:
            assert doc, f"item {i}: a document boundary with no document before it"
            docs.append(doc)
            doc = []
        else:
            assert eos not in ids[:-1], f"item {i}: eos inside a line"
            doc.append([dictionary.symbols[t] for t in ids[:-1]])
    assert doc, "the split ends with a document boundary"
    docs.append(doc)
    return docs


@pytest.fixture
def read_output():
    """read_output(directory) -> (BertDictionary from its dict.txt, {split: documents})."""

    def read(directory):
        dictionary = BertDictionary.load(os.path.join(directory, "dict.txt"))
        splits = {
            split: _read_documents(os.path.join(directory, split), dictionary)
            for split in ("train", "valid")
            if os.path.exists(os.path.join(directory, split + ".idx"))
        }
        return dictionary, splits

    return read


@pytest.fixture(scope="session")
def small_docs(stdlib_documents):
    """40 real documents of a few paragraphs each: quick to tokenize, realistic WordPiece splits."""
    return [doc[:6] for doc in stdlib_documents[:40]]


@pytest.fixture(scope="session")
def bert_pieces(bert_vocab):
    """The word pieces transformers' BertTokenizer (uncased) gives a line: the reference tokenization."""
    from transformers import BertTokenizer

    tokenizer = BertTokenizer(str(bert_vocab), do_lower_case=True)
    return tokenizer.tokenize
