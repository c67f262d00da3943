"""One test per row of the "Bad input" table (README.md, docs/reliability.md), through the commands a user runs.

Raw text and vocabularies go through the `spanbert-preprocess` console script; binaries, options and
checkpoints through the `fairseq-train` console script. Each is a subprocess whose exit status,
stderr, log and output files the test reads. How a degenerate block is masked shows in no command's
output: those rows test the masker, and a batch of such blocks through the model and criterion.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import spanbert_fairseq
from spanbert_fairseq.data.dictionary import BertDictionary

USER_DIR = os.path.dirname(spanbert_fairseq.__file__)
BIN = Path(sys.executable).parent  # the virtualenv's console scripts
WORDS = "the quick brown fox jumps over the lazy dog near our river bank".split()
TIMEOUT_S = 240
TRACEBACK_HINT = "(set SPANBERT_TRACEBACK=1 for the traceback)"


def run_command(argv, env=()):
    # One thread per process: several runs share the machine's cores (train_runs below).
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **dict(env)}
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=environment,
                          timeout=TIMEOUT_S)


def assert_input_error(run, prog, *fragments):
    """Exit status 1, no traceback, and the error as one line `PROG: error: ...` holding every fragment.

    fairseq-train may print library warnings before it; after it comes only the hint how to get the
    traceback. spanbert-preprocess prints nothing else at all. Returns the error line.
    """
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    lines = run.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, run.stderr[-3000:]
    line = lines[errors[0]]
    assert lines[errors[0]:] == ([line, TRACEBACK_HINT] if prog == "fairseq-train" else lines), run.stderr[-3000:]
    for fragment in fragments:
        assert str(fragment) in line, f"{fragment!r} not in {line!r}"
    return line


def read_items(prefix):
    """The items of a split, read with fairseq's own mmap reader (not the plugin's)."""
    from fairseq.data.indexed_dataset import MMapIndexedDataset

    dataset = MMapIndexedDataset(str(prefix))
    return [dataset[i].numpy() for i in range(len(dataset))]


def vocab_ids(vocab_path):
    """token -> id of a BERT vocab.txt, read by hand: the id is the line number from 0."""
    return {token: i for i, token in enumerate(Path(vocab_path).read_text(encoding="utf-8").splitlines())}


# ---------------------------------------------------------------- spanbert-preprocess


def preprocess(*argv):
    return run_command([BIN / "spanbert-preprocess", *argv])


def sentence(i, words=8):
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(words)).capitalize() + "."


def corpus(documents=3, lines=3):
    return "\n\n".join("\n".join(sentence(d * 7 + i) for i in range(lines)) for d in range(documents)) + "\n"


def assert_nothing_written(work, *inputs):
    """Only the inputs are in `work`: no output directory, no staged temporary one."""
    assert sorted(os.listdir(work)) == sorted(Path(p).name for p in inputs)


# ---------------------------------------------------------------- fairseq-train, several at a time

# Each training-side row prepares its input in a directory of its own and runs the fairseq-train
# console script on it. A run is a fresh interpreter that imports torch and fairseq (about 4 CPU
# seconds), so the module starts the runs of the selected tests together, as many at a time as
# there are cores, and each test waits for its own.
TRAIN_INPUTS = {}


SPAN_BERT_FLAGS = ("--task", "span_bert", "--criterion", "span_bert", "--tokens-per-sample", "64")
SPAN_QA_FLAGS = ("--task", "span_qa", "--criterion", "span_qa", "--max-seq-length", "64")


def train_input(*tests, task_flags=SPAN_BERT_FLAGS):
    """Register `prepare(work, tiny_data_dir, bert_vocab) -> (data, flags, env)` as the run `tests` read."""

    def register(prepare):
        TRAIN_INPUTS[prepare.__name__] = (prepare, tests, task_flags)
        return prepare

    return register


@dataclass
class TrainRun:
    work: Path  # the run's own directory: its damaged data, its save dir
    data: str  # the data argument fairseq-train got
    process: subprocess.CompletedProcess


def fairseq_train(work, data, flags=(), env=(), task_flags=SPAN_BERT_FLAGS):
    """The fairseq-train console script on spanbert_tiny for 1 update, saving nothing."""
    return run_command([
        BIN / "fairseq-train", data, "--user-dir", USER_DIR, *task_flags,
        "--arch", "spanbert_tiny", "--batch-size", "4", "--optimizer", "adam",
        "--lr", "1e-4", "--max-update", "1", "--cpu", "--num-workers", "0", "--save-dir", work / "save",
        "--no-save", "--no-progress-bar", "--log-format", "simple", "--log-interval", "1", *flags,
    ], env)  # fmt: skip


def start_run(prepare, task_flags, work, tiny_data_dir, bert_vocab):
    data, flags, env = prepare(work, tiny_data_dir, bert_vocab)
    return TrainRun(work, str(data), fairseq_train(work, data, flags, env, task_flags))


@pytest.fixture(scope="module", autouse=True)
def train_runs(request, tiny_data_dir, bert_vocab, tmp_path_factory):
    """{name of a registered input: Future of its TrainRun}, for the inputs of the tests this session runs.

    Autouse: the runs start with the module's first test, while the spanbert-preprocess rows run.
    """
    selected = {item.originalname for item in request.session.items if item.path == Path(__file__)}
    workers = max(1, min(4, len(os.sched_getaffinity(0))))
    with ThreadPoolExecutor(workers) as pool:
        yield {
            name: pool.submit(start_run, prepare, task_flags,
                              tmp_path_factory.mktemp(re.sub(r"\W+", "_", name).strip("_")), tiny_data_dir, bert_vocab)
            for name, (prepare, tests, task_flags) in TRAIN_INPUTS.items()
            if selected.intersection(tests)
        }


def copy_of(tiny_data_dir, work):
    return shutil.copytree(tiny_data_dir, work / "data")


def dict_lines(data):
    return (Path(data) / "dict.txt").read_text(encoding="utf-8").splitlines()


def write_dict(data, lines):
    (Path(data) / "dict.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ================================================================= raw text (spanbert-preprocess)


def test_raw_text_empty_file(tmp_path, bert_vocab):
    text = tmp_path / "empty.txt"
    text.write_bytes(b"")
    run = preprocess(text, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert_input_error(run, "spanbert-preprocess", f"spanbert-preprocess: error: {text}: empty file")
    assert_nothing_written(tmp_path, text)


def test_raw_text_only_blank_lines(tmp_path, bert_vocab):
    text = tmp_path / "blank.txt"
    text.write_bytes(b"\n  \r\n\t\n\n")  # 4 lines: empty, spaces, a tab, empty
    run = preprocess(text, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert_input_error(run, "spanbert-preprocess",
                       f"spanbert-preprocess: error: {text}: holds only blank lines (4 lines), no text")
    assert_nothing_written(tmp_path, text)


def test_raw_text_document_shorter_than_two_tokens(tmp_path, bert_vocab):
    """Dropped, and the summary says how many and where the first one was."""
    text = tmp_path / "short.txt"
    text.write_text(corpus(2) + "\nHi\n\n" + corpus(1) + "\nYes\n")
    hi_line = corpus(2).count("\n") + 2  # after document 2 and its blank line
    run = preprocess(text, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert f"2 documents under 2 tokens dropped (first at {text}:{hi_line})" in run.stdout
    ids = vocab_ids(bert_vocab)
    items = read_items(tmp_path / "out" / "train")
    assert not any(np.isin(item, [ids["hi"], ids["yes"]]).any() for item in items)
    assert sum(len(item) == 1 for item in items) == 2  # the 3 documents kept, 2 boundaries between them


def long_line_words(bert_vocab):
    """Whole words, each one piece of the vocabulary, until the line holds 1,000,000 characters."""
    assert set(WORDS) <= vocab_ids(bert_vocab).keys()
    words, length = [], -1
    while length < 1_000_000:
        words.append(WORDS[len(words) % len(WORDS)])
        length += 1 + len(words[-1])
    return words


@train_input("test_raw_text_line_of_a_million_characters")
def million_character_line(work, tiny_data_dir, bert_vocab):
    text = work / "long.txt"
    text.write_text(corpus(1) + "\n" + " ".join(long_line_words(bert_vocab)) + "\n")
    run = preprocess(text, "--vocab", bert_vocab, "--destdir", work / "out")
    assert run.returncode == 0, run.stderr
    return work / "out", ["--tokens-per-sample", "512", "--disable-validation"], {}


@pytest.mark.slow
def test_raw_text_line_of_a_million_characters(train_runs, bert_vocab):
    """Kept whole by spanbert-preprocess; fairseq-train cuts it into blocks, loses no token, logs the split."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    run = train_runs["million_character_line"].result()
    assert run.process.returncode == 0, run.process.stderr[-3000:]
    words, ids = long_line_words(bert_vocab), vocab_ids(bert_vocab)
    items = read_items(Path(run.data) / "train")
    assert items[-1].tolist() == [ids[w] for w in words] + [ids["[SEP]"]]  # one item, in order

    tokens = sum(len(item) - 1 for item in items)  # every line without its [SEP]
    blocks = 1 + math.ceil(len(words) / 510)  # the first document's 3 short lines fit one block
    assert (f"train {Path(run.data) / 'train'}: {blocks} blocks, {tokens} tokens, 2 documents; "
            "1 lines longer than a block split") in run.process.stdout

    # The block lengths are not in any output: the task fairseq-train built, loaded here.
    argv = [run.data, "--user-dir", USER_DIR, "--task", "span_bert", "--tokens-per-sample", "512",
            "--arch", "spanbert_tiny", "--batch-size", "4"]  # fmt: skip
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    task = tasks.setup_task(convert_namespace_to_omegaconf(args).task)
    task.load_dataset("train")
    assert task.dataset("train").sizes.max() - 2 <= 510  # sizes count [CLS] and [SEP]


def test_raw_text_bytes_that_are_not_utf8(tmp_path, bert_vocab):
    """The error names file, line, byte and offset; --encoding-errors replace substitutes and counts."""
    text = tmp_path / "latin1.txt"
    before = corpus(1).encode() + b"\nCaf"
    text.write_bytes(before + "\xe9 au lait tonight please.\n".encode("latin-1"))
    bad_line = corpus(1).count("\n") + 2
    run = preprocess(text, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert_input_error(run, "spanbert-preprocess",
                       f"spanbert-preprocess: error: {text}:{bad_line}: invalid UTF-8 byte 0xe9 at byte offset "
                       f"{len(before)} ", "--encoding-errors replace")
    assert_nothing_written(tmp_path, text)

    replaced = preprocess(text, "--vocab", bert_vocab, "--encoding-errors", "replace", "--destdir", tmp_path / "out")
    assert replaced.returncode == 0, replaced.stderr
    assert f"1 invalid UTF-8 sequences replaced (first at {text}:{bad_line})" in replaced.stdout


def test_raw_text_windows_line_endings(tmp_path, bert_vocab):
    """Same binaries and dict.txt as the same text with \\n."""
    unix, windows = tmp_path / "unix.txt", tmp_path / "windows.txt"
    unix.write_text(corpus(), newline="\n")
    windows.write_bytes(corpus().replace("\n", "\r\n").encode())
    for path, out in ((unix, "out-unix"), (windows, "out-windows")):
        run = preprocess(path, "--vocab", bert_vocab, "--destdir", tmp_path / out)
        assert run.returncode == 0, run.stderr
    for name in ("train.bin", "train.idx", "dict.txt"):
        assert (tmp_path / "out-unix" / name).read_bytes() == (tmp_path / "out-windows" / name).read_bytes()


def test_raw_text_file_that_does_not_exist(tmp_path):
    """Checked before any work: the vocabulary, unusable here, is not even read."""
    good, missing, vocab = tmp_path / "good.txt", tmp_path / "nope.txt", tmp_path / "vocab.txt"
    good.write_text(corpus())
    vocab.write_text("\n".join(WORDS) + "\n")  # no special tokens: reading it would be an error
    run = preprocess(good, missing, "--vocab", vocab, "--destdir", tmp_path / "out")
    assert_input_error(run, "spanbert-preprocess", f"spanbert-preprocess: error: {missing}: no such file")
    assert_nothing_written(tmp_path, good, vocab)


# ================================================================= vocabulary


def test_vocab_without_bert_special_tokens(tmp_path, bert_vocab):
    vocab, text = tmp_path / "vocab.txt", tmp_path / "a.txt"
    lines = bert_vocab.read_text(encoding="utf-8").splitlines()
    vocab.write_text("\n".join(t for t in lines if t not in ("[CLS]", "[MASK]")) + "\n", encoding="utf-8")
    text.write_text(corpus())
    run = preprocess(text, "--vocab", vocab, "--destdir", tmp_path / "out")
    assert_input_error(run, "spanbert-preprocess",
                       f"spanbert-preprocess: error: {vocab}: vocabulary lacks the special tokens [CLS], [MASK] (")
    assert_nothing_written(tmp_path, vocab, text)


@train_input("test_vocab_without_bert_special_tokens_as_training_dict")
def dict_without_mask(work, tiny_data_dir, bert_vocab):
    data = copy_of(tiny_data_dir, work)
    write_dict(data, [line for line in dict_lines(data) if not line.startswith("[MASK] ")])
    return data, [], {}


@pytest.mark.slow
def test_vocab_without_bert_special_tokens_as_training_dict(train_runs):
    run = train_runs["dict_without_mask"].result()
    assert_input_error(run.process, "fairseq-train", f"fairseq-train: error: {Path(run.data) / 'dict.txt'}: "
                       "vocabulary lacks the special tokens [MASK] (")


def test_vocab_with_duplicate_entries(tmp_path, bert_vocab):
    vocab, text = tmp_path / "vocab.txt", tmp_path / "a.txt"
    lines = bert_vocab.read_text(encoding="utf-8").splitlines()
    vocab.write_text("\n".join(lines + ["fox"]) + "\n", encoding="utf-8")
    text.write_text(corpus())
    run = preprocess(text, "--vocab", vocab, "--destdir", tmp_path / "out")
    assert_input_error(run, "spanbert-preprocess",
                       f"spanbert-preprocess: error: {vocab}:{len(lines) + 1}: duplicate vocabulary entry 'fox'")
    assert_nothing_written(tmp_path, vocab, text)


# ================================================================= GLUE TSVs (spanbert-glue)

RTE_HEADER = "index\tsentence1\tsentence2\tlabel"


def write_rte(directory, train_rows, dev_rows):
    directory.mkdir()
    for name, rows in (("train.tsv", train_rows), ("dev.tsv", dev_rows)):
        (directory / name).write_text("\n".join([RTE_HEADER, *rows]) + "\n", encoding="utf-8")
    return directory


def test_glue_row_with_the_wrong_number_of_columns(tmp_path, bert_vocab):
    train = [f"0\t{sentence(0)}\t{sentence(1)}\tentailment", f"1\t{sentence(2)}\tnot_entailment"]
    rte = write_rte(tmp_path / "RTE", train, [f"0\t{sentence(3)}\t{sentence(4)}\tentailment"])
    run = run_command([BIN / "spanbert-glue", rte, "--vocab", bert_vocab, "--destdir", tmp_path / "out"])
    assert_input_error(run, "spanbert-glue", f"spanbert-glue: error: {rte / 'train.tsv'}:3: 3 tab-separated "
                       "columns, the header has 4")
    assert_nothing_written(tmp_path, rte)


def test_glue_dev_label_that_train_never_saw(tmp_path, bert_vocab):
    rte = write_rte(tmp_path / "RTE", [f"{i}\t{sentence(i)}\t{sentence(i + 1)}\t{label}"
                                       for i, label in enumerate(["entailment", "not_entailment"])],
                    [f"0\t{sentence(3)}\t{sentence(4)}\tentailment", f"1\t{sentence(5)}\t{sentence(6)}\tneutral"])
    run = run_command([BIN / "spanbert-glue", rte, "--vocab", bert_vocab, "--destdir", tmp_path / "out"])
    assert_input_error(run, "spanbert-glue", f"spanbert-glue: error: {rte / 'dev.tsv'}:3: label 'neutral' never "
                       f"occurs in {rte / 'train.tsv'} (its labels: entailment, not_entailment)")
    assert_nothing_written(tmp_path, rte)


# ================================================================= dict.txt and checkpoints against the binaries

# fairseq-train loads the valid split before the train split; the expectations below are computed
# for both and the error must name one of them exactly.
SPLITS = ("valid", "train")


@train_input("test_dict_that_does_not_match_the_binaries")
def dict_of_500_entries(work, tiny_data_dir, bert_vocab):
    data = copy_of(tiny_data_dir, work)
    write_dict(data, dict_lines(data)[:500])
    return data, [], {}


@pytest.mark.slow
def test_dict_that_does_not_match_the_binaries(train_runs, tiny_data_dir):
    """A dict.txt with fewer entries than the ids in the binaries: the first such id and its line."""
    run = train_runs["dict_of_500_entries"].result()
    data = Path(run.data)

    def expected(split):
        # Lines are the binaries' items, counted from 0 as fairseq's dataset indices are.
        line, item = next((i, item) for i, item in enumerate(read_items(tiny_data_dir / split)) if item.max() >= 500)
        token = item[item >= 500][0]
        return (f"fairseq-train: error: {data / split}.bin: token id {token} (line {line}) is not in "
                f"{data / 'dict.txt'} (500 entries): {data / 'dict.txt'} does not match these binaries")

    error = assert_input_error(run.process, "fairseq-train")
    assert any(error.startswith(expected(split)) for split in SPLITS), (error, [expected(s) for s in SPLITS])


@train_input("test_dict_whose_sep_is_elsewhere_does_not_match_the_binaries")
def dict_with_sep_moved(work, tiny_data_dir, bert_vocab):
    data = copy_of(tiny_data_dir, work)
    lines = dict_lines(data)
    sep = next(i for i, line in enumerate(lines) if line.startswith("[SEP] "))
    lines[sep], lines[sep + 10] = lines[sep + 10], lines[sep]
    write_dict(data, lines)
    return data, [], {}


@pytest.mark.slow
def test_dict_whose_sep_is_elsewhere_does_not_match_the_binaries(train_runs, tiny_data_dir):
    """Same size, but [SEP] (the id every line ends with) moved 10 lines down."""
    run = train_runs["dict_with_sep_moved"].result()
    data = Path(run.data)
    new_sep = next(i for i, line in enumerate(dict_lines(data)) if line.startswith("[SEP] "))

    def expected(split):
        items = read_items(tiny_data_dir / split)
        wrong = [i for i, item in enumerate(items) if item[-1] != new_sep]
        return (f"fairseq-train: error: {data / split}.bin: {len(wrong)} of {len(items)} lines (first: line "
                f"{wrong[0]}) do not end with {data / 'dict.txt'}'s [SEP] (id {new_sep}): {data / 'dict.txt'} "
                "does not match these binaries")

    error = assert_input_error(run.process, "fairseq-train")
    assert error in [expected(split) for split in SPLITS], (error, [expected(s) for s in SPLITS])


@train_input("test_dict_of_another_vocabulary_of_the_same_size")
def dict_with_two_pieces_swapped(work, tiny_data_dir, bert_vocab):
    text = work / "corpus.txt"
    text.write_text(corpus(), encoding="utf-8")
    data = work / "data"
    made = preprocess(text, "--vocab", bert_vocab, "--valid", text, "--workers", "1", "--destdir", data)
    assert made.returncode == 0, made.stderr
    lines = dict_lines(data)
    lines[2000], lines[2001] = lines[2001], lines[2000]  # same size, same specials: every id still fits
    write_dict(data, lines)
    return data, [], {}


@pytest.mark.slow
def test_dict_of_another_vocabulary_of_the_same_size(train_runs):
    """spanbert-preprocess's stamp records the vocabulary's hash: two pieces trading ids are caught."""
    run = train_runs["dict_with_two_pieces_swapped"].result()
    data = Path(run.data)
    size = len(dict_lines(data))
    error = assert_input_error(run.process, "fairseq-train")
    expected = [(f"fairseq-train: error: {data / split}.bin was written with another vocabulary than "
                 f"{data / 'dict.txt'}: {data / split}.stamp.json records {size} entries (sha256 ") for split in SPLITS]
    assert any(error.startswith(e) for e in expected), (error, expected)
    assert f"{data / 'dict.txt'} has {size} (sha256 " in error
    assert error.endswith("use the dict.txt spanbert-preprocess wrote with these binaries")


@pytest.mark.slow
def test_checkpoint_whose_vocabulary_size_differs_from_the_data(tiny_data_dir, tmp_path, uninterrupted_dir):
    """--restore-file of a run on the tiny data, onto a copy whose dict.txt has 7 more entries."""
    data = copy_of(tiny_data_dir, tmp_path)
    trained = len(dict_lines(tiny_data_dir))  # the reference run's vocabulary: a token per line
    write_dict(data, dict_lines(data) + [f"[unused_extra{i}] 0" for i in range(7)])
    checkpoint = uninterrupted_dir / "checkpoint_last.pt"
    run = fairseq_train(tmp_path, data, ["--restore-file", checkpoint, "--reset-optimizer"])
    assert_input_error(run, "fairseq-train",
                       f"fairseq-train: error: Cannot load model parameters from checkpoint {checkpoint}; ",
                       f": vocabulary mismatch: the checkpoint was trained with {trained} vocabulary entries but "
                       f"the data's dict.txt has {trained + 7}. ")


# ================================================================= binaries


@train_input("test_truncated_bin", "test_fairseq_train_prints_input_errors_as_one_line")
def truncated_bin(work, tiny_data_dir, bert_vocab, env=()):
    data = copy_of(tiny_data_dir, work)
    os.truncate(data / "train.bin", 100)
    return data, [], dict(env)


@pytest.mark.slow
def test_truncated_bin(train_runs, tiny_data_dir):
    run = train_runs["truncated_bin"].result()
    described = os.path.getsize(tiny_data_dir / "train.bin")  # what the intact train.idx describes
    assert_size_mismatch(run, 100, described)


def assert_size_mismatch(run, holds, described):
    data = Path(run.data)
    assert_input_error(run.process, "fairseq-train",
                       f"fairseq-train: error: {data / 'train.bin'} holds {holds} bytes but {data / 'train.idx'} "
                       f"describes {described} ",
                       ": the .bin is truncated or the .idx belongs to another dataset")


@train_input("test_idx_from_another_dataset")
def idx_from_another_dataset(work, tiny_data_dir, bert_vocab):
    data = copy_of(tiny_data_dir, work)
    shutil.copy(data / "valid.idx", data / "train.idx")
    return data, [], {}


@pytest.mark.slow
def test_idx_from_another_dataset(train_runs, tiny_data_dir):
    """train.idx is valid's: the check names train.bin and train.idx with their two sizes."""
    run = train_runs["idx_from_another_dataset"].result()
    holds, described = os.path.getsize(tiny_data_dir / "train.bin"), os.path.getsize(tiny_data_dir / "valid.bin")
    assert_size_mismatch(run, holds, described)


@train_input("test_missing_split")
def missing_split(work, tiny_data_dir, bert_vocab):
    data = copy_of(tiny_data_dir, work)
    (data / "valid.bin").unlink()
    (data / "valid.idx").unlink()
    return data, [], {}


@pytest.mark.slow
def test_missing_split(train_runs):
    run = train_runs["missing_split"].result()
    data = Path(run.data)
    assert_input_error(run.process, "fairseq-train",
                       f"fairseq-train: error: split 'valid' not found: missing {data / 'valid.idx'} and "
                       f"{data / 'valid.bin'}")


@train_input("test_empty_shard")
def empty_shard(work, tiny_data_dir, bert_vocab):
    from fairseq.data.indexed_dataset import MMapIndexedDatasetBuilder

    shard0, shard1 = shutil.copytree(tiny_data_dir, work / "shard0"), work / "shard1"
    shard1.mkdir()
    shutil.copy(tiny_data_dir / "dict.txt", shard1 / "dict.txt")
    MMapIndexedDatasetBuilder(str(shard1 / "train.bin"), dtype=np.uint16).finalize(str(shard1 / "train.idx"))
    # Epoch 1 (shard0) in a few updates; epoch 2 reads shard1.
    return f"{shard0}:{shard1}", ["--max-update", "1000", "--max-epoch", "2", "--batch-size", "32",
                                  "--disable-validation"], {}


@pytest.mark.slow
def test_empty_shard(train_runs):
    """The second shard of `shard0:shard1` holds no lines: named when epoch 2 loads it, after epoch 1."""
    run = train_runs["empty_shard"].result()
    assert_input_error(run.process, "fairseq-train",
                       f"fairseq-train: error: {run.work / 'shard1' / 'train.idx'}: empty split (0 lines)")
    assert "end of epoch 1 " in run.process.stdout


# ================================================================= options

# One value per row of the table, each a fairseq-train run; both ends of every range are checked on
# MaskingParams itself (tests/data/test_bad_input.py::test_bad_masking_options_name_the_flag).
OPTION_ERRORS = {
    "--tokens-per-sample 1024": "--tokens-per-sample 1024 exceeds the model's 512 positions",
    "--span-lower 5 --span-upper 2": "--span-upper (2) must not be below --span-lower (5)",
    "--geometric-p 0": "--geometric-p must lie in (0, 1], got 0.0",
    "--mask-ratio 1": "--mask-ratio must lie in (0, 1), got 1.0",
    "--max-pair-targets 0": "--max-pair-targets must be at least 1, got 0",
}


def option_input(flags):
    def prepare(work, tiny_data_dir, bert_vocab):
        return tiny_data_dir, flags.split(), {}  # read only: the data is not the problem

    prepare.__name__ = flags
    return prepare


for _flags in OPTION_ERRORS:
    train_input("test_option_out_of_range_names_the_flag")(option_input(_flags))


@pytest.mark.slow
@pytest.mark.parametrize("flags", OPTION_ERRORS)
def test_option_out_of_range_names_the_flag(train_runs, flags):
    run = train_runs[flags].result()
    assert_input_error(run.process, "fairseq-train", f"fairseq-train: error: {OPTION_ERRORS[flags]}")


def test_geometric_p_of_one_with_span_lower_above_one(bert_vocab):
    """p = 1 puts all geometric mass on the shortest span: counted from --span-lower, that is span_lower.

    The drawn lengths are in no command's output: the masker's trace of the spans it places shows them.
    """
    from spanbert_fairseq.data.span_masking import MaskingParams, SpanMasker

    params = MaskingParams(geometric_p=1.0, span_lower=2, span_upper=10)
    assert params.length_probs().tolist() == [1.0] + [0.0] * 8  # lengths 2..10
    dictionary = BertDictionary.load(str(bert_vocab))
    block = np.array([dictionary.index(WORDS[i % len(WORDS)]) for i in range(200)])  # every token a word
    masker = SpanMasker(params, dictionary)
    drawn = {int(words) for index in range(20) for words in masker.trace_spans(block, 1, 1, index)[:, 2]}
    assert drawn == {2}


# ================================================================= degenerate blocks

MASK_RATIO = 0.15


@pytest.fixture(scope="module")
def masker_and_dictionary(bert_vocab):
    from spanbert_fairseq.data.span_masking import MaskingParams, SpanMasker

    dictionary = BertDictionary.load(str(bert_vocab))
    return SpanMasker(MaskingParams(mask_ratio=MASK_RATIO), dictionary), dictionary


def degenerate_blocks(dictionary):
    continuation = [i for i, s in enumerate(dictionary.symbols) if s.startswith("##")][:40]
    word = [dictionary.index(w) for w in WORDS]
    return {
        "no word starts": torch.tensor(continuation[:37]),
        "length 1": torch.tensor(word[:1]),
        "length 2": torch.tensor(word[:2]),
        "all [UNK]": torch.full((23,), dictionary.unk()),
    }


# Budgets by hand: ceil(0.15 x 37) = 6, ceil(0.15 x 1) = ceil(0.15 x 2) = 1; [UNK] is never masked.
EXPECTED_MASKED = {"no word starts": 6, "length 1": 1, "length 2": 1, "all [UNK]": 0}


@pytest.mark.parametrize("kind", EXPECTED_MASKED)
def test_degenerate_block_is_masked_as_documented(masker_and_dictionary, kind):
    """docs/data.md: no word start -> one word, masked from its start; 1-2 tokens -> budget 1; all [UNK] ->
    no targets. Every span here touches a block edge, so none has an SBO pair."""
    masker, d = masker_and_dictionary
    block = degenerate_blocks(d)[kind]
    for index in range(20):  # other draws of the span's anchor and length
        out = masker.mask_block(block, 1, 1, index)
        masked = (out.target != d.pad()).nonzero().flatten().tolist()
        assert len(masked) == EXPECTED_MASKED[kind]
        if kind == "no word starts":
            # The whole block is one word starting at token 0: its first 6 tokens, whatever the anchor.
            assert masked == list(range(6))
        assert len(out.pairs) == 0


def test_batch_of_degenerate_blocks_trains_without_nan(masker_and_dictionary):
    """The collater, the model and the criterion take a batch of only degenerate blocks."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    from spanbert_fairseq.data.span_masked_dataset import collate_span_batch
    from spanbert_fairseq.tasks.span_bert import SpanBertTask

    masker, d = masker_and_dictionary
    items = [
        {"id": i, **masker.mask_block(block, 1, 1, i)._asdict()}
        for i, block in enumerate(degenerate_blocks(d).values())
    ]
    sample = collate_span_batch(items, d.pad(), d.cls(), d.sep(), masker.max_pair_targets)
    args = options.parse_args_and_arch(
        options.get_training_parser(),
        ["unused", "--user-dir", USER_DIR, "--task", "span_bert", "--criterion", "span_bert",
         "--arch", "spanbert_tiny", "--batch-size", "4"],
    )  # fmt: skip
    cfg = convert_namespace_to_omegaconf(args)
    task = SpanBertTask(cfg.task, d)
    torch.manual_seed(0)
    model, criterion = task.build_model(cfg.model), task.build_criterion(cfg.criterion)
    loss, sample_size, logging_output = criterion(model, sample)
    assert sample_size == sum(EXPECTED_MASKED.values())
    assert logging_output["sbo_targets"] == 0  # every span touches a block edge
    assert torch.isfinite(loss) and loss > 0, logging_output
    loss.backward()
    sbo_head = {id(p) for p in model.encoder.sbo_head.parameters()}
    for name, p in model.named_parameters():
        if id(p) in sbo_head:
            assert p.grad is None or not p.grad.any(), name  # no pair: nothing reaches the SBO head
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.encoder.embed_weight.grad.abs().sum() > 0


# ================================================================= what the user sees


@train_input("test_fairseq_train_prints_input_errors_as_one_line")
def truncated_bin_with_traceback(work, tiny_data_dir, bert_vocab):
    return truncated_bin(work, tiny_data_dir, bert_vocab, env={"SPANBERT_TRACEBACK": "1"})


@pytest.mark.slow
def test_fairseq_train_prints_input_errors_as_one_line(train_runs):
    """The same input error without and with SPANBERT_TRACEBACK=1: one line, or the traceback of that error.

    (Every training-side row above checks its own error for the one-line form and exit status 1.)
    """
    plain = train_runs["truncated_bin"].result()
    error = assert_input_error(plain.process, "fairseq-train")
    message = error.removeprefix("fairseq-train: error: ").replace(plain.data, "DATA")

    run = train_runs["truncated_bin_with_traceback"].result()
    assert run.process.returncode == 1
    assert "Traceback (most recent call last):" in run.process.stderr
    assert "fairseq-train: error:" not in run.process.stderr
    last = run.process.stderr.splitlines()[-1]
    assert last.replace(run.data, "DATA") == f"spanbert_text.mmap_index.BinaryDataError: {message}"


# ================================================================= SQuAD files (fairseq-train --task span_qa)

CONTEXT = "The quick brown fox jumps over the lazy dog near our river bank."


def squad_document(context=CONTEXT, question="what does the fox jump over ?", answer="the lazy dog", start=None):
    start = context.find(answer) if start is None else start
    qa = {"id": "q1", "question": question, "answers": [{"text": answer, "answer_start": start}]}
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": [qa]}]}]}


def squad_input(train_document, flags=""):
    """A data directory with the tiny data's vocabulary, a good valid.json and `train_document` as train.json."""

    def prepare(work, tiny_data_dir, bert_vocab):
        data = work / "data"
        data.mkdir()
        for name in ("dict.txt", "vocab.txt"):
            shutil.copy(Path(tiny_data_dir) / name, data / name)
        (data / "valid.json").write_text(json.dumps(squad_document()), encoding="utf-8")
        (data / "train.json").write_text(json.dumps(train_document), encoding="utf-8")
        return data, flags.split(), {}

    return prepare


def assert_squad_refused(run, *fragments):
    """One error line naming DATA/train.json and the place; the save directory stays empty."""
    assert_input_error(run.process, "fairseq-train", f"{run.data}/train.json: ", *fragments)
    assert not [p for p in (run.work / "save").rglob("*") if p.is_file()]


NOT_SQUAD = {
    "no data": ({"version": "1.1", "articles": []}, "the top level has no 'data' list, so this is not a SQuAD file"),
    "no paragraphs": ({"data": [{"title": "t", "text": CONTEXT}]}, "data[0] has no 'paragraphs' list"),
    "no qas": ({"data": [{"paragraphs": [{"context": CONTEXT, "questions": []}]}]},
               "data[0].paragraphs[0] has no 'qas' list"),
}
for _name, (_document, _) in NOT_SQUAD.items():
    train_input("test_json_that_is_not_squad", task_flags=SPAN_QA_FLAGS)(squad_input(_document))
    TRAIN_INPUTS[_name] = TRAIN_INPUTS.pop("prepare")


@pytest.mark.slow
@pytest.mark.parametrize("name", NOT_SQUAD)
def test_json_that_is_not_squad(train_runs, name):
    assert_squad_refused(train_runs[name].result(), NOT_SQUAD[name][1], "(expected {\"data\": [{\"paragraphs\"")


@train_input("test_answer_start_that_does_not_hold_its_text", task_flags=SPAN_QA_FLAGS)
def answer_start_off_by_two(work, tiny_data_dir, bert_vocab):
    return squad_input(squad_document(start=CONTEXT.find("the lazy dog") + 2))(work, tiny_data_dir, bert_vocab)


@pytest.mark.slow
def test_answer_start_that_does_not_hold_its_text(train_runs):
    assert_squad_refused(
        train_runs["answer_start_off_by_two"].result(),
        "data[0].paragraphs[0].qas[0] (id q1): answer_start 33 does not hold the answer 'the lazy dog' "
        "(the context there reads 'e lazy dog n'); correct answer_start",
    )


@train_input("test_question_longer_than_the_window", task_flags=SPAN_QA_FLAGS)
def question_of_twenty_words(work, tiny_data_dir, bert_vocab):
    document = squad_document(question=" ".join(["the"] * 20) + " ?")
    return squad_input(document, "--max-seq-length 16")(work, tiny_data_dir, bert_vocab)


@pytest.mark.slow
def test_question_longer_than_the_window(train_runs):
    assert_squad_refused(
        train_runs["question_of_twenty_words"].result(),
        "question q1: the question's 21 tokens leave no room for the context in a window of --max-seq-length 16",
        "raise --max-seq-length or lower --max-query-length",
    )


@train_input("test_empty_context", task_flags=SPAN_QA_FLAGS)
def empty_context(work, tiny_data_dir, bert_vocab):
    document = squad_document()
    document["data"][0]["paragraphs"][0]["context"] = "  "
    return squad_input(document)(work, tiny_data_dir, bert_vocab)


@pytest.mark.slow
def test_empty_context(train_runs):
    assert_squad_refused(train_runs["empty_context"].result(), "data[0].paragraphs[0]: empty context")
