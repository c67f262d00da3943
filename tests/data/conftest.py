import importlib.util
from pathlib import Path

import pytest

from spanbert_fairseq.data.dictionary import BertDictionary

# tests/ is not a package: load the corpus builders by path.
_spec = importlib.util.spec_from_file_location("_spanbert_tests_corpus", Path(__file__).with_name("corpus.py"))
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)


@pytest.fixture(scope="session")
def wordpiece_data(tmp_path_factory, bert_vocab, stdlib_documents):
    """(data dir, BertDictionary, train documents as id arrays) for BERT uncased WordPiece."""
    out, docs = corpus.make_wordpiece_data_dir(tmp_path_factory.mktemp("wp"), bert_vocab, stdlib_documents)
    return out, BertDictionary.load(str(out / "dict.txt")), docs


@pytest.fixture(scope="session")
def sentencepiece_data(tmp_path_factory, stdlib_documents):
    """(data dir, BertDictionary, train documents) for a tiny SentencePiece model trained on the prose."""
    out, docs = corpus.make_sentencepiece_data_dir(tmp_path_factory.mktemp("spm"), stdlib_documents)
    return out, BertDictionary.load(str(out / "dict.txt")), docs
