"""Decoding the binaries gives back the tokenizer's pieces, line for line, document for document."""

import filecmp
import os

import sentencepiece as spm
from tokenizers import Tokenizer

from spanbert_fairseq.data.dictionary import BertDictionary


def test_given_wordpiece_round_trip(tmp_path, small_docs, bert_vocab, bert_pieces, write_corpus, run_cli, read_output):
    corpus = write_corpus(tmp_path / "corpus.txt", small_docs)
    out = tmp_path / "bin"
    result = run_cli(corpus, "--vocab", bert_vocab, "--destdir", out)
    assert result.code == 0, result.err
    dictionary, splits = read_output(out)
    assert dictionary.symbols == BertDictionary.load(str(bert_vocab)).symbols  # ids = vocab.txt lines
    assert splits["train"] == [[bert_pieces(line) for line in doc] for doc in small_docs]
    assert "valid" not in splits
    n_lines = sum(map(len, small_docs))
    assert f"{len(small_docs)} documents" in result.out and f"{n_lines} lines" in result.out
    assert str(out) in result.out
    assert (out / "vocab.txt").read_text(encoding="utf-8") == bert_vocab.read_text(encoding="utf-8")


def test_dict_counts_are_training_token_counts(tmp_path, small_docs, bert_vocab, bert_pieces, write_corpus, run_cli):
    corpus = write_corpus(tmp_path / "corpus.txt", small_docs)
    assert run_cli(corpus, "--vocab", bert_vocab, "--destdir", tmp_path / "bin").code == 0
    dictionary = BertDictionary.load(str(tmp_path / "bin" / "dict.txt"))
    the = sum(bert_pieces(line).count("the") for doc in small_docs for line in doc)
    assert the > 0 and dictionary.count[dictionary.index("the")] == the
    n_items = sum(map(len, small_docs)) + len(small_docs) - 1
    assert dictionary.count[dictionary.eos()] == n_items


def test_lowercasing_follows_the_vocab_unless_overridden(tmp_path, bert_vocab, write_corpus, run_cli, read_output):
    corpus = write_corpus(tmp_path / "c.txt", [["The Quick Brown Fox", "Jumps Over Zürich"]])
    assert run_cli(corpus, "--vocab", bert_vocab, "--destdir", tmp_path / "auto").code == 0
    _, auto = read_output(tmp_path / "auto")
    assert auto["train"][0][0] == ["the", "quick", "brown", "fox"]
    assert "zurich" in auto["train"][0][1]  # uncased BERT strips accents too
    result = run_cli(corpus, "--vocab", bert_vocab, "--no-lowercase", "--destdir", tmp_path / "cased")
    assert result.code == 0 and "(cased)" in result.out
    _, cased = read_output(tmp_path / "cased")
    assert cased["train"][0][0] != auto["train"][0][0]
    assert "[UNK]" in cased["train"][0][0]  # "The" is not in an uncased vocab


def test_gzip_and_several_files_keep_boundaries(tmp_path, small_docs, bert_vocab, write_corpus, run_cli, read_output):
    first = write_corpus(tmp_path / "a.txt.gz", small_docs[:10], gz=True)
    second = write_corpus(tmp_path / "b.txt", small_docs[10:20])
    plain = write_corpus(tmp_path / "all.txt", small_docs[:20])
    assert run_cli(first, second, "--vocab", bert_vocab, "--destdir", tmp_path / "two").code == 0
    assert run_cli(plain, "--vocab", bert_vocab, "--destdir", tmp_path / "one").code == 0
    for name in ("train.bin", "train.idx", "dict.txt"):
        assert filecmp.cmp(tmp_path / "two" / name, tmp_path / "one" / name, shallow=False), name


def test_windows_line_endings_and_bom_give_the_same_binaries(tmp_path, small_docs, bert_vocab, write_corpus, run_cli):
    unix = write_corpus(tmp_path / "unix.txt", small_docs)
    windows = tmp_path / "windows.txt"
    windows.write_bytes(b"\xef\xbb\xbf" + open(write_corpus(tmp_path / "w", small_docs, newline="\r\n"), "rb").read())
    assert b"\r\n" in windows.read_bytes()
    assert run_cli(unix, "--vocab", bert_vocab, "--destdir", tmp_path / "u").code == 0
    assert run_cli(windows, "--vocab", bert_vocab, "--destdir", tmp_path / "w_out").code == 0
    for name in ("train.bin", "train.idx"):
        assert filecmp.cmp(tmp_path / "u" / name, tmp_path / "w_out" / name, shallow=False), name


def test_blank_line_runs_collapse_to_one_boundary(tmp_path, bert_vocab, run_cli, read_output):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n first document here\nsecond line\n\n \n\t\n\nnext document here\n\n\n", encoding="utf-8")
    assert run_cli(corpus, "--vocab", bert_vocab, "--destdir", tmp_path / "bin").code == 0
    _, splits = read_output(tmp_path / "bin")
    assert splits["train"] == [[["first", "document", "here"], ["second", "line"]], [["next", "document", "here"]]]


def test_trained_wordpiece_round_trip(tmp_path, small_docs, write_corpus, run_cli, read_output):
    corpus = write_corpus(tmp_path / "corpus.txt", small_docs)
    out = tmp_path / "bin"
    result = run_cli(corpus, "--train-wordpiece", 1500, "--destdir", out)
    assert result.code == 0, result.err
    dictionary, splits = read_output(out)
    assert dictionary.symbols[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    specials = (dictionary.pad(), dictionary.unk(), dictionary.cls(), dictionary.eos(), dictionary.mask())
    assert specials == (0, 1, 2, 3, 4)
    assert 100 < len(dictionary) <= 1500
    assert not dictionary.is_sentencepiece()
    assert not dictionary.word_start_table().all(), "a trained WordPiece vocab has ## continuations"
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    expected = [[tokenizer.encode(line, add_special_tokens=False).tokens for line in doc] for doc in small_docs]
    assert splits["train"] == expected
    assert BertDictionary.load(str(out / "vocab.txt")).symbols == dictionary.symbols
    assert any(t != t.lower() for doc in expected for line in doc for t in line), "trained WordPiece keeps case"


def test_trained_sentencepiece_round_trip(tmp_path, small_docs, write_corpus, run_cli, read_output):
    corpus = write_corpus(tmp_path / "corpus.txt", small_docs)
    out = tmp_path / "bin"
    result = run_cli(corpus, "--train-sentencepiece", 800, "--destdir", out, "--workers", 1)
    assert result.code == 0, result.err
    dictionary, splits = read_output(out)
    assert dictionary.is_sentencepiece()
    assert [dictionary.symbols[i] for i in dictionary.special_ids()] == ["<pad>", "<unk>", "<s>", "</s>", "<mask>"]
    processor = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    assert [processor.id_to_piece(i) for i in range(processor.get_piece_size())] == dictionary.symbols
    # Pieces by id: an out-of-vocabulary character is <unk> in the binaries.
    expected = [[[processor.id_to_piece(i) for i in processor.encode(line)] for line in doc] for doc in small_docs]
    assert splits["train"] == expected
    starts = dictionary.word_start_table()
    assert starts[dictionary.index("\u2581the")] and not starts.all()

    # The saved model is a vocabulary too: reusing it reproduces the binaries.
    again = run_cli(corpus, "--vocab", out / "spm.model", "--destdir", tmp_path / "again", "--workers", 1)
    assert again.code == 0, again.err
    assert filecmp.cmp(out / "train.bin", tmp_path / "again" / "train.bin", shallow=False)


def test_million_character_line(tmp_path, bert_vocab, run_cli, read_output):
    words = ("the cat sat on a mat " * 50_000)[:1_000_000].split()
    corpus = tmp_path / "long.txt"
    corpus.write_text("a short first line\n" + " ".join(words) + "\n", encoding="utf-8")
    assert len(corpus.read_text(encoding="utf-8").split("\n")[1]) >= 999_990
    assert run_cli(corpus, "--vocab", bert_vocab, "--destdir", tmp_path / "bin").code == 0
    _, splits = read_output(tmp_path / "bin")
    (doc,) = splits["train"]
    assert len(doc) == 2 and doc[1] == words  # kept whole: one item, every word one vocab token
    assert os.path.getsize(tmp_path / "bin" / "train.bin") == 2 * (len(doc[0]) + 1 + len(words) + 1)  # uint16


def test_trained_wordpiece_is_the_same_on_every_run(tmp_path, stdlib_documents, write_corpus, run_cli):
    # The tokenizers trainer alone numbers "##" pieces in hash-map order, which changes tie-broken
    # merges; on this corpus two runs in a row gave different vocabularies before pinning them.
    corpus = write_corpus(tmp_path / "corpus.txt", stdlib_documents)
    for run in range(3):
        result = run_cli(corpus, "--train-wordpiece", 2000, "--destdir", tmp_path / f"run{run}")
        assert result.code == 0, result.err
    for run in (1, 2):
        for name in ("dict.txt", "train.bin", "train.idx"):
            assert filecmp.cmp(tmp_path / "run0" / name, tmp_path / f"run{run}" / name, shallow=False), (run, name)
