"""The embedded default corpus: prose from what Python ships, in the input format, deterministic."""

import json
import os

from spanbert_preprocess import default_corpus


def test_docstring_documents_are_deterministic_and_prose():
    json_package = os.path.dirname(json.__file__)
    first = default_corpus.stdlib_docstring_documents(json_package)
    assert first == default_corpus.stdlib_docstring_documents(json_package)
    assert len(first) == len([n for n in os.listdir(json_package) if n.endswith(".py")])
    assert json.__doc__.split("\n\n")[0].split()[0] in first[0][0]  # json/__init__.py comes first
    for doc in first:
        assert all(line and line == " ".join(line.split()) and not line.startswith(">>>") for line in doc)


def test_written_corpus_is_in_the_input_format(tmp_path, capsys):
    out = tmp_path / "corpus.txt"
    assert default_corpus.main([str(out)]) == 0
    summary = capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    documents = text.rstrip("\n").split("\n\n")
    lines = [line for doc in documents for line in doc.split("\n")]
    assert all(line.strip() for line in lines), "a blank line inside a document, or a run of blank lines"
    n_topics = len(default_corpus.pydoc_topic_documents())
    assert n_topics > 50 and len(documents) > n_topics + 300  # topics plus hundreds of modules
    assert 1_000_000 < len(text.encode("utf-8")) < 8_000_000
    assert f"{len(documents)} documents, {len(lines)} lines, {len(text.encode('utf-8'))} bytes" in summary
    assert str(out) in summary


def test_usage_error(capsys):
    assert default_corpus.main([]) == 2
    assert "usage" in capsys.readouterr().err
