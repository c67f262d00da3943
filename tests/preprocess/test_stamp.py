"""spanbert-preprocess writes PREFIX.stamp.json beside every split: the vocabulary's hash and what the
binaries hold, as an independent reading of dict.txt and of the binaries (fairseq's reader) finds them."""

import hashlib
import json

import numpy as np
from fairseq.data.indexed_dataset import MMapIndexedDataset


def dict_tokens_sha256(path):
    tokens = [line.rsplit(" ", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()]
    return hashlib.sha256("".join(t + "\n" for t in tokens).encode("utf-8")).hexdigest(), len(tokens)


def assert_stamp_describes(prefix, dict_path):
    stamp = json.loads(prefix.with_name(prefix.name + ".stamp.json").read_text())
    dataset = MMapIndexedDataset(str(prefix))
    ids = np.concatenate([dataset[i].numpy() for i in range(len(dataset))])
    sha, size = dict_tokens_sha256(dict_path)
    assert stamp == {"format": 1, "writer": "spanbert-preprocess", "vocabulary_sha256": sha,
                     "vocabulary_size": size, "lines": len(dataset), "tokens": len(ids),
                     "largest_id": int(ids.max()), "lines_end_with_eos": True}


def test_every_split_and_shard_has_its_stamp(tmp_path, write_corpus, run_cli, small_docs, bert_vocab):
    corpus = write_corpus(tmp_path / "c.txt", small_docs)
    out = tmp_path / "out"
    result = run_cli(corpus, "--vocab", bert_vocab, "--valid-fraction", "0.2", "--shards", "2", "--destdir", out)
    assert result.code == 0, result.err
    for shard in ("shard0", "shard1"):
        assert_stamp_describes(out / shard / "train", out / shard / "dict.txt")
    assert_stamp_describes(out / "shard0" / "valid", out / "shard0" / "dict.txt")
    assert not (out / "shard1" / "valid.stamp.json").exists()


def test_the_hash_ignores_the_counts(tmp_path, write_corpus, run_cli, small_docs, bert_vocab):
    """Two corpora through one vocab.txt: other counts in dict.txt, the same vocabulary hash."""
    stamps = []
    for name, docs in (("a", small_docs[:20]), ("b", small_docs[20:])):
        corpus = write_corpus(tmp_path / f"{name}.txt", docs)
        assert run_cli(corpus, "--vocab", bert_vocab, "--destdir", tmp_path / name).code == 0
        stamps.append(json.loads((tmp_path / name / "train.stamp.json").read_text()))
    assert (tmp_path / "a" / "dict.txt").read_text() != (tmp_path / "b" / "dict.txt").read_text()
    assert stamps[0]["vocabulary_sha256"] == stamps[1]["vocabulary_sha256"]
    assert stamps[0]["tokens"] != stamps[1]["tokens"]
