"""Every bad input: a clear error naming file and line, exit code != 0, no traceback, nothing half-written."""

import gzip
import os

import pytest

from spanbert_preprocess import binaries

GOOD = [["A first document with a few words.", "And a second line."], ["Another document, also short."]]


def assert_refused(result, *fragments, destdir=None):
    assert result.code != 0
    assert "Traceback" not in result.err
    assert result.err.startswith("spanbert-preprocess: error: ")
    for fragment in fragments:
        assert str(fragment) in result.err, (fragment, result.err)
    if destdir is not None:
        assert not os.path.exists(destdir), "a refused run left an output directory"
        assert not [n for n in os.listdir(os.path.dirname(destdir)) if ".tmp-" in n], "temporary directory left"


def test_missing_vocab(tmp_path, write_corpus, run_cli):
    corpus = write_corpus(tmp_path / "c.txt", GOOD)
    result = run_cli(corpus, "--vocab", tmp_path / "vocab.txt", "--destdir", tmp_path / "out")
    assert_refused(result, tmp_path / "vocab.txt", "no such file", destdir=tmp_path / "out")


def test_empty_file(tmp_path, bert_vocab, write_corpus, run_cli):
    good = write_corpus(tmp_path / "good.txt", GOOD)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    result = run_cli(good, empty, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert_refused(result, empty, "empty file", destdir=tmp_path / "out")


def test_empty_gzip_file(tmp_path, bert_vocab, run_cli):
    empty = tmp_path / "empty.txt.gz"
    with gzip.open(empty, "wb"):
        pass
    result = run_cli(empty, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert_refused(result, empty, "empty file", destdir=tmp_path / "out")


def test_truncated_gzip_file(tmp_path, bert_vocab, write_corpus, run_cli):
    path = write_corpus(tmp_path / "c.txt.gz", GOOD * 50, gz=True)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    result = run_cli(path, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert_refused(result, path, "cannot read", destdir=tmp_path / "out")


def test_non_utf8_past_the_first_block(tmp_path, bert_vocab, run_cli, monkeypatch):
    from spanbert_preprocess import text_input

    monkeypatch.setattr(text_input, "BLOCK_BYTES", 64)  # many blocks: line and offset must carry over
    lines = [f"line number {i} of the file" for i in range(40)]
    data = "\n".join(lines[:25]).encode() + b"\nbad \xff byte\n" + "\n".join(lines[25:]).encode() + b"\n"
    path = tmp_path / "c.txt"
    path.write_bytes(data)
    result = run_cli(path, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    bad_offset = data.index(b"\xff")
    assert_refused(result, f"{path}:26:", f"byte offset {bad_offset}", destdir=tmp_path / "out")


def _vocab_without(bert_vocab, path, drop=(), duplicate=None):
    tokens = [t for t in bert_vocab.read_text(encoding="utf-8").split("\n")[:-1] if t not in drop]
    if duplicate:
        tokens.append(duplicate)
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


def test_output_of_another_vocabulary_is_refused_unless_forced(tmp_path, bert_vocab, write_corpus, run_cli):
    corpus = write_corpus(tmp_path / "c.txt", GOOD * 20)
    out = tmp_path / "out"
    assert run_cli(corpus, "--vocab", bert_vocab, "--destdir", out).code == 0
    before = (out / "train.bin").read_bytes()
    result = run_cli(corpus, "--train-wordpiece", 200, "--destdir", out)
    assert_refused(result, out, "another vocabulary", "--force")
    assert (out / "train.bin").read_bytes() == before
    assert run_cli(corpus, "--vocab", bert_vocab, "--destdir", out).code == 0, "same vocabulary: rerun allowed"
    forced = run_cli(corpus, "--train-wordpiece", 200, "--destdir", out, "--force")
    assert forced.code == 0, forced.err
    assert len((out / "dict.txt").read_text(encoding="utf-8").splitlines()) <= 200


def test_forced_rewrite_replaces_old_shards_and_keeps_other_files(tmp_path, bert_vocab, write_corpus, run_cli):
    corpus = write_corpus(tmp_path / "c.txt", GOOD * 20)
    out = tmp_path / "out"
    assert run_cli(corpus, "--vocab", bert_vocab, "--shards", 3, "--destdir", out).code == 0
    (out / "notes.md").write_text("mine")
    assert run_cli(corpus, "--vocab", bert_vocab, "--destdir", out).code == 0
    assert sorted(os.listdir(out)) == sorted(
        ["notes.md", "dict.txt", "train.bin", "train.idx", "train.stamp.json", "vocab.txt", "tokenizer.json"]
    )


def test_binaries_without_dict_are_refused(tmp_path, bert_vocab, write_corpus, run_cli):
    corpus = write_corpus(tmp_path / "c.txt", GOOD)
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.bin").write_bytes(b"\0" * 8)
    assert_refused(run_cli(corpus, "--vocab", bert_vocab, "--destdir", out), out, "without a dict.txt")


def test_short_documents_are_dropped_and_counted(tmp_path, bert_vocab, run_cli, read_output):
    path = tmp_path / "c.txt"
    path.write_text("a real document here\n\nhello\n\nanother real one\n\n\x00\x01\n", encoding="utf-8")
    result = run_cli(path, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert result.code == 0, result.err
    assert f"2 documents under 2 tokens dropped (first at {path}:3)" in result.out
    assert "1 lines without tokens dropped" in result.out
    _, splits = read_output(tmp_path / "out")
    assert splits["train"] == [[["a", "real", "document", "here"]], [["another", "real", "one"]]]


def test_nothing_left_after_dropping(tmp_path, bert_vocab, run_cli):
    path = tmp_path / "c.txt"
    path.write_text("one\n\ntwo\n", encoding="utf-8")
    result = run_cli(path, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert_refused(result, path, "no training document", destdir=tmp_path / "out")


def test_empty_valid_split_and_empty_shard_are_refused(tmp_path, bert_vocab, write_corpus, run_cli):
    corpus = write_corpus(tmp_path / "c.txt", GOOD)
    result = run_cli(corpus, "--vocab", bert_vocab, "--valid-fraction", 0.01, "--destdir", tmp_path / "out")
    assert_refused(result, "valid split is empty", destdir=tmp_path / "out")
    result = run_cli(corpus, "--vocab", bert_vocab, "--shards", 3, "--destdir", tmp_path / "out")
    assert_refused(result, "--shards 3", "shard2 would be empty", destdir=tmp_path / "out")


@pytest.mark.parametrize("flags", [["--valid-fraction", "1.5"], ["--shards", "0"], ["--workers", "0"],
                                   ["--train-wordpiece", "5"]])
def test_bad_options(tmp_path, write_corpus, flags, capsys):
    from spanbert_preprocess.cli import main

    corpus = write_corpus(tmp_path / "c.txt", GOOD)
    vocab_flags = [] if "--train-wordpiece" in flags else ["--train-sentencepiece", "500"]
    with pytest.raises(SystemExit) as exit_info:
        main([corpus, "--destdir", str(tmp_path / "out"), *vocab_flags, *flags])
    assert exit_info.value.code == 2
    assert flags[0] in capsys.readouterr().err


def test_crash_leaves_nothing_that_loads(tmp_path, small_docs, bert_vocab, write_corpus, run_cli, monkeypatch):
    corpus = write_corpus(tmp_path / "c.txt", small_docs)
    out = tmp_path / "out"
    assert run_cli(corpus, "--vocab", bert_vocab, "--destdir", out).code == 0
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}

    def crash(self):
        # By now the data is written: the staged directory exists, the destination is untouched.
        staged = [n for n in os.listdir(tmp_path) if ".tmp-" in n]
        assert staged and not os.path.exists(tmp_path / staged[0] / "dict.txt")
        raise KeyboardInterrupt

    monkeypatch.setattr(binaries.DatasetWriter, "close", crash)
    result = run_cli(corpus, "--vocab", bert_vocab, "--destdir", tmp_path / "new")
    assert result.code == 130 and "nothing written" in result.err
    assert not os.path.exists(tmp_path / "new")
    result = run_cli(corpus, "--vocab", bert_vocab, "--destdir", out)
    assert result.code == 130
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_destdir_that_is_a_file(tmp_path, bert_vocab, write_corpus, run_cli):
    corpus = write_corpus(tmp_path / "c.txt", GOOD)
    (tmp_path / "out").write_text("not a directory")
    assert_refused(run_cli(corpus, "--vocab", bert_vocab, "--destdir", tmp_path / "out"), "out", "not a directory")


def test_sentencepiece_vocabulary_larger_than_the_corpus_allows(tmp_path, write_corpus, run_cli):
    corpus = write_corpus(tmp_path / "c.txt", GOOD)
    result = run_cli(corpus, "--train-sentencepiece", 5000, "--destdir", tmp_path / "out", "--workers", 1)
    assert_refused(result, "SentencePiece", "5000", destdir=tmp_path / "out")


def test_not_a_sentencepiece_model(tmp_path, write_corpus, run_cli):
    corpus = write_corpus(tmp_path / "c.txt", GOOD)
    model = tmp_path / "bad.model"
    model.write_bytes(b"this is not a protobuf")
    assert_refused(run_cli(corpus, "--vocab", model, "--destdir", tmp_path / "out"), model, "not a SentencePiece model",
                   destdir=tmp_path / "out")
