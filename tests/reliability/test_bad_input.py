"""One test per row of issue 6's bad-input list, through the entry points a user runs.

Raw text and vocabularies go through `spanbert-preprocess` (its `main`, in this process); binaries,
options and checkpoints go through fairseq-train's own `main` (in this process, so each row costs
a fraction of a second instead of a fresh interpreter). Every row asserts either an error that names
what is wrong and where (file, line, flag), or the documented handling with its count in the output.
docs/reliability.md lists the rows with their test names.
"""

import os
import shutil
import signal

import numpy as np
import pytest
import torch

import spanbert_fairseq
from spanbert_fairseq.data.dictionary import BertDictionary

USER_DIR = os.path.dirname(spanbert_fairseq.__file__)
WORDS = "the quick brown fox jumps over the lazy dog near our river bank".split()


# ---------------------------------------------------------------- helpers: spanbert-preprocess


def preprocess(capsys, *argv):
    """Run spanbert-preprocess in this process -> (exit code, stdout, stderr)."""
    from spanbert_preprocess.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def sentence(i, words=8):
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(words)).capitalize() + "."


def corpus(documents=3, lines=3):
    return "\n\n".join("\n".join(sentence(d * 7 + i) for i in range(lines)) for d in range(documents)) + "\n"


def assert_one_line_error(code, err, *fragments):
    assert code not in (0, None), err
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert str(fragment) in err, f"{fragment!r} not in {err!r}"


# ---------------------------------------------------------------- helpers: fairseq-train


@pytest.fixture
def keep_signal_handlers():
    """fairseq-train's main, run in this process, may install the plugin's preemption handlers."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def fairseq_train(data, save_dir, *flags):
    """fairseq-train's main on spanbert_tiny for 1 update; returns normally or raises the error."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq_cli import train

    argv = [
        str(data), "--user-dir", USER_DIR, "--task", "span_bert", "--criterion", "span_bert",
        "--arch", "spanbert_tiny", "--tokens-per-sample", "64", "--batch-size", "4", "--optimizer", "adam",
        "--lr", "1e-4", "--max-update", "1", "--cpu", "--num-workers", "0", "--save-dir", str(save_dir),
        "--no-save", "--no-progress-bar", *map(str, flags),
    ]  # fmt: skip
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    train.main(convert_namespace_to_omegaconf(args))


@pytest.fixture
def data_dir(tiny_data_dir, tmp_path, keep_signal_handlers):
    """A private copy of the tiny data directory that a test may damage."""
    return shutil.copytree(tiny_data_dir, tmp_path / "data")


def train_error(data, tmp_path, *flags):
    """The one-line message fairseq-train prints for this input (its CLI hook), not a traceback."""
    from spanbert_fairseq.patches.cli_errors import input_error_message

    with pytest.raises(Exception) as info:
        fairseq_train(data, tmp_path / "save", *flags)
    message = input_error_message(info.value)
    assert message is not None, f"not reported as an input error (would print a traceback): {info.value!r}"
    return message


# ================================================================= raw text (spanbert-preprocess)


def test_raw_text_empty_file(tmp_path, bert_vocab, capsys):
    text = tmp_path / "empty.txt"
    text.write_bytes(b"")
    code, _, err = preprocess(capsys, text, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert_one_line_error(code, err, text, "empty")
    assert not (tmp_path / "out").exists()


def test_raw_text_only_blank_lines(tmp_path, bert_vocab, capsys):
    text = tmp_path / "blank.txt"
    text.write_text("\n\n   \n\t\n")
    code, _, err = preprocess(capsys, text, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert_one_line_error(code, err, text, "blank")


def read_items(prefix):
    from fairseq.data.indexed_dataset import MMapIndexedDataset

    dataset = MMapIndexedDataset(str(prefix))
    return [dataset[i].tolist() for i in range(len(dataset))]


def test_raw_text_document_shorter_than_two_tokens(tmp_path, bert_vocab, capsys):
    """Dropped, and the summary says how many and where the first one was."""
    text = tmp_path / "short.txt"
    text.write_text(corpus(2) + "\nHi\n\n" + corpus(1))
    short_line = corpus(2).count("\n") + 2
    code, out, err = preprocess(capsys, text, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert code == 0, err
    assert "1 documents under 2 tokens dropped" in out and f"{text}:{short_line}" in out
    hi = BertDictionary.load(str(bert_vocab)).index("hi")
    assert all(hi not in item for item in read_items(tmp_path / "out" / "train"))


def test_raw_text_line_of_a_million_characters(tmp_path, bert_vocab, capsys, keep_signal_handlers):
    """Kept whole by preprocessing; the task cuts it into blocks and loses no token."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    long_line = " ".join(WORDS[i % len(WORDS)] for i in range(1_000_000 // 5))[:1_000_000]
    text = tmp_path / "long.txt"
    text.write_text(corpus(1) + "\n" + long_line + "\n")
    code, _, err = preprocess(capsys, text, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert code == 0, err
    items = read_items(tmp_path / "out" / "train")
    longest = max(len(item) for item in items) - 1  # without its [SEP]
    assert longest >= len(long_line.split())  # every word is at least one piece

    argv = [str(tmp_path / "out"), "--user-dir", USER_DIR, "--task", "span_bert", "--tokens-per-sample", "512",
            "--arch", "spanbert_tiny", "--batch-size", "4"]  # fmt: skip
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    task = tasks.setup_task(convert_namespace_to_omegaconf(args).task)
    task.load_dataset("train")
    sizes = task.dataset("train").sizes - 2  # block lengths without [CLS]/[SEP]
    assert sizes.max() <= 510
    assert int(sizes.sum()) == sum(len(item) - 1 for item in items)


def test_raw_text_bytes_that_are_not_utf8(tmp_path, bert_vocab, capsys):
    text = tmp_path / "latin1.txt"
    text.write_bytes(corpus(1).encode() + "\nCaf\xe9 au lait tonight please.\n".encode("latin-1"))
    bad_line = corpus(1).count("\n") + 2
    code, _, err = preprocess(capsys, text, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert_one_line_error(code, err, f"{text}:{bad_line}", "UTF-8", "0xe9")


def test_raw_text_windows_line_endings(tmp_path, bert_vocab, capsys):
    """Same binaries as the same text with \\n."""
    unix, windows = tmp_path / "unix.txt", tmp_path / "windows.txt"
    unix.write_text(corpus(), newline="\n")
    windows.write_bytes(corpus().replace("\n", "\r\n").encode())
    for path, out in ((unix, "out-unix"), (windows, "out-windows")):
        code, _, err = preprocess(capsys, path, "--vocab", bert_vocab, "--destdir", tmp_path / out)
        assert code == 0, err
    for name in ("train.bin", "train.idx", "dict.txt"):
        assert (tmp_path / "out-unix" / name).read_bytes() == (tmp_path / "out-windows" / name).read_bytes()


def test_raw_text_file_that_does_not_exist(tmp_path, bert_vocab, capsys):
    missing = tmp_path / "nope.txt"
    code, _, err = preprocess(capsys, missing, "--vocab", bert_vocab, "--destdir", tmp_path / "out")
    assert_one_line_error(code, err, missing)


# ================================================================= vocabulary


def test_vocab_without_bert_special_tokens(tmp_path, bert_vocab, capsys):
    vocab = tmp_path / "vocab.txt"
    lines = bert_vocab.read_text(encoding="utf-8").splitlines()
    vocab.write_text("\n".join(t for t in lines if t not in ("[CLS]", "[MASK]")) + "\n", encoding="utf-8")
    text = tmp_path / "a.txt"
    text.write_text(corpus())
    code, _, err = preprocess(capsys, text, "--vocab", vocab, "--destdir", tmp_path / "out")
    assert_one_line_error(code, err, vocab, "[CLS]", "[MASK]")


def test_vocab_without_bert_special_tokens_as_training_dict(data_dir, tmp_path):
    lines = (data_dir / "dict.txt").read_text(encoding="utf-8").splitlines()
    (data_dir / "dict.txt").write_text("\n".join(line for line in lines if not line.startswith("[MASK] ")) + "\n")
    message = train_error(data_dir, tmp_path)
    assert str(data_dir / "dict.txt") in message and "[MASK]" in message


def test_vocab_with_duplicate_entries(tmp_path, bert_vocab, capsys):
    vocab = tmp_path / "vocab.txt"
    lines = bert_vocab.read_text(encoding="utf-8").splitlines()
    vocab.write_text("\n".join(lines + ["fox"]) + "\n", encoding="utf-8")
    text = tmp_path / "a.txt"
    text.write_text(corpus())
    code, _, err = preprocess(capsys, text, "--vocab", vocab, "--destdir", tmp_path / "out")
    assert_one_line_error(code, err, f"{vocab}:{len(lines) + 1}", "duplicate", "fox")


def test_dict_that_does_not_match_the_binaries(data_dir, tmp_path):
    """A dict.txt with fewer entries than the ids in train.bin."""
    lines = (data_dir / "dict.txt").read_text(encoding="utf-8").splitlines()
    (data_dir / "dict.txt").write_text("\n".join(lines[:500]) + "\n", encoding="utf-8")
    message = train_error(data_dir, tmp_path)
    assert "dict.txt" in message and "does not match" in message and ".bin" in message


def test_dict_whose_sep_is_elsewhere_does_not_match_the_binaries(data_dir, tmp_path):
    """Same size, but [SEP] (the id every line ends with) moved: every line's end is wrong."""
    lines = (data_dir / "dict.txt").read_text(encoding="utf-8").splitlines()
    sep = next(i for i, line in enumerate(lines) if line.startswith("[SEP] "))
    lines[sep], lines[sep + 10] = lines[sep + 10], lines[sep]
    (data_dir / "dict.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = train_error(data_dir, tmp_path)
    assert "dict.txt" in message and "does not match" in message


@pytest.mark.slow
def test_checkpoint_whose_vocabulary_size_differs_from_the_data(data_dir, tmp_path, uninterrupted_dir):
    """--restore-file of a run on this vocabulary, onto data whose dict.txt has 7 more entries."""
    with open(data_dir / "dict.txt", "a", encoding="utf-8") as f:
        f.writelines(f"[unused_extra{i}] 0\n" for i in range(7))
    checkpoint = uninterrupted_dir / "checkpoint_last.pt"
    trained = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    trained_size = trained["encoder.bert.embeddings.word_embeddings.weight"].shape[0]
    message = train_error(data_dir, tmp_path, "--restore-file", checkpoint, "--reset-optimizer")
    assert str(checkpoint) in message
    assert str(trained_size) in message and str(trained_size + 7) in message
    assert "dict.txt" in message or "vocabulary" in message


# ================================================================= binaries


def test_truncated_bin(data_dir, tmp_path):
    with open(data_dir / "train.bin", "r+b") as f:
        f.truncate(os.path.getsize(data_dir / "train.bin") // 2)
    message = train_error(data_dir, tmp_path)
    assert str(data_dir / "train.bin") in message and "truncated" in message


def test_idx_from_another_dataset(data_dir, tmp_path):
    shutil.copy(data_dir / "valid.idx", data_dir / "train.idx")
    message = train_error(data_dir, tmp_path)
    assert str(data_dir / "train.idx") in message and "another dataset" in message


def test_missing_split(data_dir, tmp_path):
    (data_dir / "valid.bin").unlink()
    (data_dir / "valid.idx").unlink()
    message = train_error(data_dir, tmp_path)
    assert "valid" in message and str(data_dir / "valid.idx") in message


def empty_split(prefix):
    from fairseq.data.indexed_dataset import MMapIndexedDatasetBuilder

    MMapIndexedDatasetBuilder(f"{prefix}.bin", dtype=np.uint16).finalize(f"{prefix}.idx")


def test_empty_shard(data_dir, tmp_path):
    """Second shard of `shard0:shard1` holds no lines: named when its epoch loads it."""
    shard0, shard1 = tmp_path / "shard0", tmp_path / "shard1"
    shutil.copytree(data_dir, shard0)
    shard1.mkdir()
    shutil.copy(data_dir / "dict.txt", shard1 / "dict.txt")
    empty_split(shard1 / "train")
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    from spanbert_fairseq.tasks.span_bert import SpanBertTask  # noqa: F401  (registers the task)

    argv = [f"{shard0}:{shard1}", "--user-dir", USER_DIR, "--task", "span_bert", "--arch", "spanbert_tiny",
            "--tokens-per-sample", "64", "--batch-size", "4"]  # fmt: skip
    task = tasks.setup_task(convert_namespace_to_omegaconf(
        options.parse_args_and_arch(options.get_training_parser(), argv)).task)
    task.load_dataset("train", epoch=1)
    with pytest.raises(Exception) as info:
        task.load_dataset("train", epoch=2)
    assert str(shard1 / "train.idx") in str(info.value) and "empty" in str(info.value)


# ================================================================= options


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--tokens-per-sample", "1024"], "--tokens-per-sample"),
        (["--span-lower", "5", "--span-upper", "2"], "--span-upper"),
        (["--geometric-p", "0"], "--geometric-p"),
        (["--geometric-p", "1.5"], "--geometric-p"),
        (["--mask-ratio", "0"], "--mask-ratio"),
        (["--mask-ratio", "1"], "--mask-ratio"),
        (["--max-pair-targets", "0"], "--max-pair-targets"),
    ],
)
def test_option_out_of_range_names_the_flag(data_dir, tmp_path, flags, named):
    message = train_error(data_dir, tmp_path, *flags)
    assert named in message and flags[-1] in message


def test_geometric_p_of_one_with_span_lower_above_one(bert_vocab):
    """p = 1 puts all geometric mass on length 1; with --span-lower 2 nothing is left to renormalise.

    Either an error naming both flags or the limit distribution (all mass on span_lower) is fine;
    NaN probabilities are not.
    """
    from spanbert_fairseq.data.span_lengths import span_length_probs

    try:
        probs = span_length_probs(1.0, 2, 10)
    except ValueError as err:
        assert "--geometric-p" in str(err) and "--span-lower" in str(err)
        return
    assert np.all(np.isfinite(probs)) and probs[0] == pytest.approx(1.0)


# ================================================================= degenerate blocks


@pytest.fixture(scope="module")
def masker_and_dictionary(bert_vocab):
    from spanbert_fairseq.data.span_masking import MaskingParams, SpanMasker

    dictionary = BertDictionary.load(str(bert_vocab))
    return SpanMasker(MaskingParams(), dictionary), dictionary


def degenerate_blocks(dictionary):
    continuation = [i for i, s in enumerate(dictionary.symbols) if s.startswith("##")][:40]
    word = [dictionary.index(w) for w in WORDS]
    return {
        "no word starts": torch.tensor(continuation[:37]),
        "length 1": torch.tensor(word[:1]),
        "length 2": torch.tensor(word[:2]),
        "all [UNK]": torch.full((23,), dictionary.unk()),
    }


@pytest.mark.parametrize("kind", ["no word starts", "length 1", "length 2", "all [UNK]"])
def test_degenerate_block_is_masked_as_documented(masker_and_dictionary, kind):
    """docs/data.md: no word start -> one word masked from its start; 1-2 tokens -> budget 1, no SBO
    pair; all [UNK] -> no targets (specials are never masked)."""
    masker, d = masker_and_dictionary
    block = degenerate_blocks(d)[kind]
    out = masker.mask_block(block, 1, 1, 0)
    masked = out.target != d.pad()
    expected = 0 if kind == "all [UNK]" else masker.budget(len(block))
    assert int(masked.sum()) == expected
    if kind == "no word starts":
        assert masked[0]  # the block's first token is its only word start
    if kind in ("length 1", "length 2", "all [UNK]"):
        assert len(out.pairs) == 0


def test_batch_of_degenerate_blocks_trains_without_nan(masker_and_dictionary):
    """The collater and the model + criterion take a batch of only degenerate blocks."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    from spanbert_fairseq.data.span_masked_dataset import collate_span_batch

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
    from spanbert_fairseq.tasks.span_bert import SpanBertTask

    task = SpanBertTask(cfg.task, d)
    model, criterion = task.build_model(cfg.model), task.build_criterion(cfg.criterion)
    loss, sample_size, logging_output = criterion(model, sample)
    assert torch.isfinite(loss), logging_output
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ================================================================= what the user sees


@pytest.mark.slow
def test_fairseq_train_prints_input_errors_as_one_line(data_dir, tmp_path):
    """The real fairseq-train command: an error naming the file, exit status 1, no traceback."""
    import subprocess

    from train_harness import train_command

    with open(data_dir / "train.bin", "r+b") as f:
        f.truncate(100)
    run = subprocess.run(train_command(data_dir, tmp_path / "save"), capture_output=True, text=True, timeout=240)
    assert run.returncode == 1, run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert f"fairseq-train: error: {data_dir / 'train.bin'} holds 100 bytes" in run.stderr
