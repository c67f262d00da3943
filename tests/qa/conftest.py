"""Vocabulary directories of the three kinds a checkpoint may carry, each as the hub finds it:
BERT uncased WordPiece (MiniLM's vocab.txt + tokenizer.json), a cased WordPiece and a
SentencePiece model trained on the pydoc topics, both with dict.txt beside them."""

import shutil
import sys
from pathlib import Path

import pytest

from spanbert_text.tokenization import load_text_tokenizer
from spanbert_text.vocabulary import Vocabulary

# qa_synthetic beside the tests imports by name; pytest's importlib mode does not add this directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))

KINDS = ("wordpiece-uncased", "wordpiece-cased", "sentencepiece")


def _batches(lines):
    return lambda: iter([lines])


@pytest.fixture(scope="session")
def pydoc_lines(stdlib_documents):
    return [line for document in stdlib_documents[:60] for line in document]


@pytest.fixture(scope="session")
def vocabulary_dirs(tmp_path_factory, minilm_dir, pydoc_lines):
    from spanbert_preprocess.encoders import train_sentencepiece, train_wordpiece

    dirs = {}
    dirs["wordpiece-uncased"] = tmp_path_factory.mktemp("uncased")
    for name in ("vocab.txt", "tokenizer.json"):
        shutil.copy(minilm_dir / name, dirs["wordpiece-uncased"] / name)
    for kind, encoder in (
        ("wordpiece-cased", train_wordpiece(_batches(pydoc_lines), 1500, lowercase=False)),
        ("sentencepiece", train_sentencepiece([pydoc_lines], 800, workers=1)),
    ):
        dirs[kind] = tmp_path_factory.mktemp(kind)
        encoder.save(str(dirs[kind]))
        encoder.dictionary.save(str(dirs[kind] / "dict.txt"))
    return dirs


@pytest.fixture(scope="session", params=KINDS)
def tokenizer_and_vocabulary(request, vocabulary_dirs):
    directory = vocabulary_dirs[request.param]
    names = [n for n in ("dict.txt", "vocab.txt") if (directory / n).exists()]
    vocabulary = Vocabulary.load(directory / names[0])
    return request.param, load_text_tokenizer(str(directory), vocabulary), vocabulary
