"""spanbert-glue: GLUE's TSVs as distributed -> sentence_prediction binaries, byte for byte what
fairseq-preprocess writes from the same pieces and labels."""

import filecmp
import os

import pytest
from fairseq import options
from fairseq.data.indexed_dataset import MMapIndexedDataset
from fairseq_cli import preprocess

import spanbert_fairseq
from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.patches import sentence_prediction_dictionary
from spanbert_preprocess.glue import main
from spanbert_text.tokenization import wordpiece_tokenizer

USER_DIR = os.path.dirname(spanbert_fairseq.__file__)
HEADERS = {
    "RTE": "index\tsentence1\tsentence2\tlabel",
    "MRPC": "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
    "SST-2": "sentence\tlabel",
}
SENTENCES = ["The cat sat on the mat.", "Stocks fell sharply on Monday, traders said.", "It rained.",
             "A man is playing a guitar on stage.", "Nobody knows where the river begins."]


def glue_row(task, i, label):
    a, b = SENTENCES[i % 5], SENTENCES[(i + 2) % 5]
    return {"RTE": f"{i}\t{a}\t{b}\t{label}", "MRPC": f"{label}\t{i}\t{i + 100}\t{a}\t{b}",
            "SST-2": f"{a}\t{label}"}[task]


def write_task(directory, task, train_labels, dev_labels):
    directory.mkdir(parents=True, exist_ok=True)
    for name, labels in (("train.tsv", train_labels), ("dev.tsv", dev_labels)):
        rows = [glue_row(task, i, label) for i, label in enumerate(labels)]
        (directory / name).write_text("\n".join([HEADERS[task], *rows]) + "\n", encoding="utf-8")
    return directory


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("task, labels", [("RTE", ["entailment", "not_entailment"]), ("MRPC", ["0", "1"]),
                                          ("SST-2", ["0", "1"])])
def test_each_task_as_distributed(tmp_path, capsys, bert_vocab, task, labels):
    glue = write_task(tmp_path / task, task, [labels[i % 3 == 0] for i in range(7)], labels * 2)
    code, out, err = run(capsys, glue, "--vocab", bert_vocab, "--destdir", tmp_path / "bin", "--workers", 1)
    assert code == 0, err
    pairs = task != "SST-2"
    assert sorted(os.listdir(tmp_path / "bin")) == (["input0", "input1", "label"] if pairs else ["input0", "label"])
    assert "--task sentence_prediction" in out and "--num-classes 2 --init-token 101" in out
    assert f"train 7 / valid 4 {'sentence pairs' if pairs else 'sentences'}" in out
    dictionary = BertDictionary.load(str(tmp_path / "bin" / "input0" / "dict.txt"))
    first = MMapIndexedDataset(str(tmp_path / "bin" / "input0" / "valid"))[0].tolist()
    tokenizer = wordpiece_tokenizer(dictionary, lowercase=True)
    assert first == tokenizer.encode(SENTENCES[0], add_special_tokens=False).ids + [dictionary.sep()]


def test_identical_to_fairseq_preprocess(tmp_path, capsys, bert_vocab):
    glue = write_task(tmp_path / "RTE", "RTE", ["b", "a", "b", "c", "b", "a"], ["a", "c", "b"])
    ours = tmp_path / "ours"
    assert run(capsys, glue, "--vocab", bert_vocab, "--destdir", ours, "--workers", 1)[0] == 0
    dictionary = BertDictionary.load(str(ours / "input0" / "dict.txt"))
    tokenizer = wordpiece_tokenizer(dictionary, lowercase=True)
    columns = {"input0": 1, "input1": 2, "label": 3}
    for split, name in (("train", "train.tsv"), ("valid", "dev.tsv")):
        rows = [line.split("\t") for line in (glue / name).read_text().splitlines()[1:]]
        for key, column in columns.items():
            text = [row[column] if key == "label" else " ".join(tokenizer.encode(row[column],
                    add_special_tokens=False).tokens) for row in rows]
            (tmp_path / f"{split}.{key}").write_text("\n".join(text) + "\n", encoding="utf-8")
    sentence_prediction_dictionary.install()  # as in fairseq's commands: BERT ids for --srcdict
    for key in columns:
        srcdict = [] if key == "label" else ["--srcdict", str(ours / key / "dict.txt")]
        args = options.get_preprocessing_parser().parse_args(
            ["--only-source", *srcdict, "--trainpref", str(tmp_path / f"train.{key}"),
             "--validpref", str(tmp_path / f"valid.{key}"), "--destdir", str(tmp_path / "theirs" / key),
             "--dataset-impl", "mmap", "--user-dir", USER_DIR, "--task", "sentence_prediction", "--workers", "1"]
        )
        preprocess.main(args)
        for name in ("train.bin", "train.idx", "valid.bin", "valid.idx", "dict.txt"):
            assert filecmp.cmp(ours / key / name, tmp_path / "theirs" / key / name, shallow=False), (key, name)


def test_a_long_pair_is_truncated_from_its_longer_sentence(tmp_path, capsys, bert_vocab):
    glue = write_task(tmp_path / "RTE", "RTE", ["a", "b"], ["a"])
    code, out, _ = run(capsys, glue, "--vocab", bert_vocab, "--destdir", tmp_path / "bin", "--max-len", 10,
                       "--workers", 1)
    assert code == 0 and "3 examples truncated to 10 tokens" in out
    # dev row 0: "The cat sat on the mat." (7 pieces) and "It rained." (3): the first loses 3.
    first = MMapIndexedDataset(str(tmp_path / "bin" / "input0" / "valid"))[0]
    second = MMapIndexedDataset(str(tmp_path / "bin" / "input1" / "valid"))[0]
    assert (len(first), len(second)) == (5, 4)  # with their [SEP]s; [CLS] makes 10
