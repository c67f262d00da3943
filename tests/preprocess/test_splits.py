"""Validation split (held-out whole documents or a given file) and shards."""

import filecmp
import math
import os

from spanbert_preprocess.cli import held_out


def _flatten_docs(splits):
    return sorted(map(repr, (doc for docs in splits for doc in docs)))


def test_held_out_share_is_exact_for_any_phase():
    for fraction in (0.01, 0.1, 0.25, 0.5, 0.9):
        for phase in (0.0, 0.3, 0.999):
            for n in (1, 7, 100, 1001):
                chosen = sum(held_out(i, fraction, phase) for i in range(n))
                assert math.floor(n * fraction) <= chosen <= math.ceil(n * fraction)


def test_valid_fraction_holds_out_whole_documents(tmp_path, small_docs, bert_vocab, write_corpus, run_cli, read_output):
    corpus = write_corpus(tmp_path / "corpus.txt", small_docs)
    out = tmp_path / "bin"
    result = run_cli(corpus, "--vocab", bert_vocab, "--valid-fraction", 0.25, "--destdir", out)
    assert result.code == 0, result.err
    _, splits = read_output(out)
    assert len(splits["valid"]) == 10 and len(splits["train"]) == 30
    _, whole = _whole_corpus(tmp_path, corpus, bert_vocab, run_cli, read_output)
    assert _flatten_docs([splits["train"], splits["valid"]]) == _flatten_docs([whole])
    # Order within each split is corpus order.
    assert splits["train"] == [d for d in whole if d in splits["train"]]
    assert "train 30, valid 10" in result.out


def _whole_corpus(tmp_path, corpus, vocab, run_cli, read_output):
    assert run_cli(corpus, "--vocab", vocab, "--destdir", tmp_path / "whole").code == 0
    dictionary, splits = read_output(tmp_path / "whole")
    return dictionary, splits["train"]


def test_valid_split_is_deterministic_per_seed(tmp_path, small_docs, bert_vocab, write_corpus, run_cli):
    corpus = write_corpus(tmp_path / "corpus.txt", small_docs)
    valid_bins = []
    for run, seed in enumerate((7, 7, 1, 2, 3, 4)):
        out = tmp_path / f"run{run}"
        result = run_cli(corpus, "--vocab", bert_vocab, "--valid-fraction", 0.2, "--seed", seed, "--destdir", out)
        assert result.code == 0
        valid_bins.append((out / "valid.bin").read_bytes())
    assert valid_bins[0] == valid_bins[1]
    assert len(set(valid_bins)) > 1, "--seed does not change the held-out documents"


def test_valid_file(tmp_path, small_docs, bert_vocab, write_corpus, run_cli, read_output):
    train = write_corpus(tmp_path / "train.txt", small_docs[:30])
    valid = write_corpus(tmp_path / "valid.txt", small_docs[30:])
    out = tmp_path / "bin"
    assert run_cli(train, "--vocab", bert_vocab, "--valid", valid, "--destdir", out).code == 0
    _, splits = read_output(out)
    assert len(splits["train"]) == 30 and len(splits["valid"]) == 10
    assert run_cli(valid, "--vocab", bert_vocab, "--destdir", tmp_path / "valid_alone").code == 0
    for ext in ("bin", "idx"):
        assert filecmp.cmp(out / f"valid.{ext}", tmp_path / "valid_alone" / f"train.{ext}", shallow=False)


def test_trained_vocabulary_never_sees_the_valid_split(tmp_path, bert_vocab, write_corpus, run_cli):
    train = write_corpus(tmp_path / "train.txt", [["alpha beta gamma"] * 50])
    valid = write_corpus(tmp_path / "valid.txt", [["zyzzyva quixotry"]])
    out = tmp_path / "bin"
    assert run_cli(train, "--train-wordpiece", 100, "--valid", valid, "--destdir", out).code == 0
    vocab = (out / "vocab.txt").read_text(encoding="utf-8").split()
    assert "alpha" in vocab and "zyzzyva" not in vocab and "q" not in vocab


def test_shards(tmp_path, small_docs, bert_vocab, write_corpus, run_cli, read_output):
    corpus = write_corpus(tmp_path / "corpus.txt", small_docs)
    out = tmp_path / "bin"
    result = run_cli(corpus, "--vocab", bert_vocab, "--shards", 3, "--valid-fraction", 0.1, "--destdir", out)
    assert result.code == 0, result.err
    shard_dirs = [out / f"shard{i}" for i in range(3)]
    assert sorted(os.listdir(out)) == ["shard0", "shard1", "shard2"]
    assert ":".join(map(str, shard_dirs)) in result.out
    shards = [read_output(d)[1] for d in shard_dirs]
    assert "valid" in shards[0] and all("valid" not in s for s in shards[1:])
    for d in shard_dirs[1:]:
        assert filecmp.cmp(shard_dirs[0] / "dict.txt", d / "dict.txt", shallow=False)
    train_counts = [len(s["train"]) for s in shards]
    assert sum(train_counts) == 36 and max(train_counts) - min(train_counts) <= 1
    _, whole = _whole_corpus(tmp_path, corpus, bert_vocab, run_cli, read_output)
    assert _flatten_docs([s["train"] for s in shards] + [shards[0]["valid"]]) == _flatten_docs([whole])


def test_shards_load_through_fairseq(tmp_path, small_docs, bert_vocab, write_corpus, run_cli):
    from fairseq.data import data_utils

    from spanbert_fairseq.data.dictionary import BertDictionary

    corpus = write_corpus(tmp_path / "corpus.txt", small_docs)
    assert run_cli(corpus, "--vocab", bert_vocab, "--shards", 2, "--destdir", tmp_path / "bin").code == 0
    for i in range(2):
        shard = tmp_path / "bin" / f"shard{i}"
        dictionary = BertDictionary.load(str(shard / "dict.txt"))
        dataset = data_utils.load_indexed_dataset(str(shard / "train"), dictionary, "mmap")
        assert dataset is not None and len(dataset) > 0
        assert int(dataset[len(dataset) - 1][-1]) == dictionary.eos()
