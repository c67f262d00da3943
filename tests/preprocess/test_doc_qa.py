"""The cloze QA set from a corpus: valid SQuAD v1.1, dev from the documents spanbert-preprocess holds out."""

import json
import re

import pytest

from spanbert_preprocess import doc_qa


@pytest.fixture(scope="module")
def corpus_docs(stdlib_documents):
    """60 pydoc topic pages: real prose with identifiers, enough sentences for a few hundred questions."""
    return stdlib_documents[:60]


def _make(tmp_path, corpus, *flags):
    out = tmp_path / "qa"
    assert doc_qa.main([str(out), corpus, "--valid-fraction", "0.2", *flags]) == 0
    return {name: json.loads((out / f"{name}.json").read_text(encoding="utf-8")) for name in ("train", "dev", "stats")}


def _questions(squad):
    return [(article["title"], p["context"], qa) for article in squad["data"] for p in article["paragraphs"]
            for qa in p["qas"]]


def test_output_is_valid_squad_with_unseen_dev_documents(tmp_path, corpus_docs, write_corpus, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt", corpus_docs)
    made = _make(tmp_path, corpus, "--train-questions", "400", "--dev-questions", "40")
    summary = capsys.readouterr().out
    train, dev = _questions(made["train"]), _questions(made["dev"])
    assert len(train) == 400 and len(dev) == 40 and made["stats"]["dev"]["available"] > 40
    assert f"{len(train)} train questions" in summary and f"{len(dev)} dev questions" in summary
    ids = [qa["id"] for _, _, qa in train + dev]
    assert len(set(ids)) == len(ids)
    assert not {t for t, _, _ in train} & {t for t, _, _ in dev}
    for squad in (made["train"], made["dev"]):
        assert squad["version"] == "1.1"
    for _, context, qa in train + dev:
        assert qa["answers"] and doc_qa.BLANK in qa["question"]
        for answer in qa["answers"]:
            start, text = answer["answer_start"], answer["text"]
            assert context[start : start + len(text)] == text
            assert text == qa["answers"][0]["text"]
        # Real extraction: the answer is nowhere in the question, the question's sentence not in the context.
        term = qa["answers"][0]["text"]
        assert not re.search(r"(?<![\w.])" + re.escape(term) + r"(?![\w]|\.\w)", qa["question"])
        assert qa["question"].replace(doc_qa.BLANK, term, 1) not in context


def test_same_flags_same_files_and_the_sample_seed_changes_them(tmp_path, corpus_docs, write_corpus):
    corpus = write_corpus(tmp_path / "corpus.txt", corpus_docs)
    first = _make(tmp_path / "a", corpus, "--dev-questions", "30")
    assert first == _make(tmp_path / "b", corpus, "--dev-questions", "30")
    other = _make(tmp_path / "c", corpus, "--dev-questions", "30", "--sample-seed", "2")
    assert _questions(other["dev"]) != _questions(first["dev"])


def test_dev_documents_are_those_spanbert_preprocess_holds_out(
    tmp_path, corpus_docs, write_corpus, run_cli, read_output, bert_vocab, bert_pieces
):
    corpus = write_corpus(tmp_path / "corpus.txt", corpus_docs)
    result = run_cli(corpus, "--vocab", bert_vocab, "--valid-fraction", 0.2, "--seed", 3, "--destdir", tmp_path / "b")
    assert result.code == 0, result.err
    _, splits = read_output(tmp_path / "b")
    train, dev = doc_qa.split_documents(corpus, 0.2, 3)
    assert len(dev) == 12 and len(train) == 48
    assert [[bert_pieces(line) for line in lines] for _, lines in dev] == splits["valid"]


def test_a_corpus_too_small_to_hold_out_a_document_is_one_line(tmp_path, write_corpus, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt", [["One document only, with a sentence or two."]])
    assert doc_qa.main([str(tmp_path / "qa"), corpus, "--valid-fraction", "0.1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("doc_qa: error: ") and "no document held out with --valid-fraction 0.1" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "qa" / "dev.json").exists()
