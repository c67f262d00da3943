"""spanbert-preprocess writes byte for byte what fairseq-preprocess writes from the same word pieces."""

import filecmp
import os

from fairseq import options
from fairseq_cli import preprocess

import spanbert_fairseq

USER_DIR = os.path.dirname(spanbert_fairseq.__file__)


def write_pieces(path, docs, tokenize):
    """The authors' intermediate file: space-separated pieces, a blank line between documents."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join("\n".join(" ".join(tokenize(line)) for line in doc) for doc in docs) + "\n")


def test_identical_to_fairseq_preprocess(tmp_path, small_docs, bert_vocab, bert_pieces, write_corpus, run_cli):
    """The stock route of docs/preprocess.md: --write-pieces, then fairseq-preprocess --srcdict dict.txt."""
    train_docs, valid_docs = small_docs[:32], small_docs[32:]
    ours = tmp_path / "ours"
    result = run_cli(write_corpus(tmp_path / "train.txt", train_docs), "--vocab", bert_vocab,
                     "--valid", write_corpus(tmp_path / "valid.txt", valid_docs), "--destdir", ours, "--write-pieces")
    assert result.code == 0, result.err
    assert "word pieces for fairseq-preprocess in train.pieces/valid.pieces" in result.out

    write_pieces(tmp_path / "train.pieces", train_docs, bert_pieces)  # the pieces, written independently
    write_pieces(tmp_path / "valid.pieces", valid_docs, bert_pieces)
    for split in ("train", "valid"):
        assert filecmp.cmp(ours / f"{split}.pieces", tmp_path / f"{split}.pieces", shallow=False), split
    theirs = tmp_path / "theirs"
    args = options.get_preprocessing_parser().parse_args(
        ["--only-source", "--srcdict", str(ours / "dict.txt"), "--trainpref", str(ours / "train.pieces"),
         "--validpref", str(ours / "valid.pieces"), "--destdir", str(theirs), "--dataset-impl", "mmap",
         "--user-dir", USER_DIR, "--task", "span_bert", "--workers", "1"]
    )
    preprocess.main(args)  # in this process: fairseq is imported once
    for name in ("train.bin", "train.idx", "valid.bin", "valid.idx", "dict.txt"):
        assert filecmp.cmp(ours / name, theirs / name, shallow=False), f"{name} differs from fairseq-preprocess"
    # fairseq-preprocess copies --srcdict, counts included: they are ours, the training split's unigram.
    assert (theirs / "dict.txt").read_text() == (ours / "dict.txt").read_text()


def test_span_bert_task_reads_one_shard_per_epoch(tmp_path, small_docs, bert_vocab, write_corpus, run_cli):
    from fairseq.data.indexed_dataset import MMapIndexedDataset

    from spanbert_fairseq.tasks.span_bert import SpanBertConfig, SpanBertTask

    corpus = write_corpus(tmp_path / "c.txt", small_docs)
    result = run_cli(corpus, "--vocab", bert_vocab, "--shards", 2, "--valid-fraction", 0.1,
                     "--destdir", tmp_path / "bin")
    assert result.code == 0, result.err
    data = result.out.rsplit("fairseq-train data: ", 1)[1].rstrip(")\n")
    task = SpanBertTask.setup_task(SpanBertConfig(data=data, seed=1, tokens_per_sample=128))
    for epoch, shard in ((1, 0), (2, 1), (3, 0)):
        task.load_dataset("train", epoch=epoch)
        items = MMapIndexedDataset(str(tmp_path / "bin" / f"shard{shard}" / "train"))
        text_tokens = int(items.sizes.sum()) - len(items)  # every item carries one eos
        assert int((task.datasets["train"].sizes - 2).sum()) == text_tokens  # blocks: [CLS] ... [SEP]
    task.load_dataset("valid")
    assert len(task.datasets["valid"]) > 0
