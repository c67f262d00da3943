"""fairseq-train --task span_qa --criterion span_qa on a small synthetic span task, from a random
spanbert_tiny: it learns the task, its validation scores are the official metric's on the answers
the hub and the evaluation script give, and the hub's answers are the context's characters."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import qa_synthetic as synthetic

from spanbert_text.squad import read_questions
from spanbert_text.squad_metric import evaluate
from spanbert_text.vocabulary import Vocabulary

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_DIR = str(REPO_ROOT / "spanbert_fairseq")


@pytest.fixture(scope="module")
def qa_data(tmp_path_factory, vocabulary_dirs):
    """The cased WordPiece vocabulary directory with train.json (300 questions) and valid.json (60)."""
    data = tmp_path_factory.mktemp("qa-data")
    for f in vocabulary_dirs["wordpiece-cased"].iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    vocabulary = Vocabulary.load(data / "dict.txt")
    synthetic.write(data / "train.json", synthetic.likes_task(vocabulary, 300, seed=1))
    synthetic.write(data / "valid.json", synthetic.likes_task(vocabulary, 60, seed=2))
    return data


def train_args(data, save_dir, max_update=60, extra=()):
    # Windows of 32 tokens, 8 apart: each context is several windows, split across batches of 8
    # and two data-loader workers, so the per-question reduction is exercised across batches.
    return [
        str(data), "--user-dir", USER_DIR, "--task", "span_qa", "--criterion", "span_qa",
        "--arch", "spanbert_tiny", "--max-seq-length", "32", "--doc-stride", "8", "--max-query-length", "8",
        "--batch-size", "8", "--optimizer", "adam", "--lr", "2e-3", "--lr-scheduler", "polynomial_decay",
        "--warmup-updates", "10", "--total-num-update", str(max_update), "--max-update", str(max_update),
        "--dropout", "0.0", "--attention-dropout", "0.0", "--cpu", "--num-workers", "2", "--seed", "1",
        "--save-dir", str(save_dir), "--no-epoch-checkpoints", "--best-checkpoint-metric", "f1",
        "--maximize-best-checkpoint-metric", "--log-format", "json", "--log-interval", "10", *extra,
    ]


def run(command, cwd):
    env = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout + proc.stderr


def valid_scores(log):
    rows = [json.loads(line[line.index("{"):]) for line in log.splitlines() if '"valid_f1"' in line]
    assert rows, log[-3000:]
    return [{k: float(v) for k, v in row.items() if k.startswith("valid_")} for row in rows]


@pytest.fixture(scope="module")
def trained(qa_data, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("qa-run")
    log = run([sys.executable, "-m", "fairseq_cli.train", *train_args(qa_data, save_dir)], save_dir)
    return save_dir, valid_scores(log)


def first_word_baseline(path):
    questions, _ = read_questions(path)
    answers = {q.qid: q.answer_texts for q in questions}
    return evaluate(answers, {q.qid: q.context.split()[0] for q in questions})["f1"]


@pytest.mark.slow
def test_fine_tuning_learns_the_synthetic_task(trained, qa_data):
    """Seed 1, 60 updates: valid F1 at least 90 where answering the first word scores under 10."""
    _, scores = trained
    baseline = first_word_baseline(qa_data / "valid.json")
    assert baseline < 10.0
    assert scores[-1]["valid_f1"] >= 90.0, scores
    assert 0 <= scores[-1]["valid_exact_match"] <= scores[-1]["valid_f1"]


@pytest.mark.slow
def test_validation_scores_equal_the_evaluation_scripts(trained, qa_data, tmp_path):
    """The F1 fairseq-train logged for checkpoint_best.pt is the official metric on the answers the
    evaluation script (the hub's windowed decoding) writes, and every question has an answer."""
    save_dir, scores = trained
    out = tmp_path / "eval"
    run([sys.executable, "-m", "spanbert_fairseq.evaluation.squad", str(save_dir), str(qa_data / "valid.json"),
         str(out)], tmp_path)
    summary = json.loads((out / "eval.json").read_text())
    predictions = json.loads((out / "predictions.json").read_text())
    questions, _ = read_questions(qa_data / "valid.json")
    assert set(predictions) == {q.qid for q in questions}
    assert summary["f1"] == pytest.approx(max(s["valid_f1"] for s in scores), abs=0.01)
    assert summary["exact_match"] == pytest.approx(evaluate({q.qid: q.answer_texts for q in questions},
                                                            predictions)["exact_match"])


@pytest.mark.slow
def test_hub_answer_is_the_contexts_characters(trained, qa_data):
    from spanbert_fairseq.hub.loading import from_pretrained

    save_dir, _ = trained
    hub = from_pretrained(save_dir, "checkpoint_best.pt")
    questions, _ = read_questions(qa_data / "valid.json")
    for question in questions[:5]:
        text, score, start, end = hub.answer(question.question, question.context)
        assert question.context[start:end] == text and isinstance(score, float)
    right = sum(hub.answer(q.question, q.context)[0] == q.answers[0][0] for q in questions[:20])
    assert right >= 18


@pytest.mark.slow
def test_version_2_answers_are_cut_at_the_threshold_chosen_on_dev(trained, qa_data, tmp_path):
    """v2.0 dev (a third unanswerable): eval.json's keys, and predictions.json (cut at best_f1_thresh)
    scored as plain answers gives best_f1, the official search's figure."""
    from spanbert_fairseq.evaluation.squad import predict
    from spanbert_fairseq.hub.loading import from_pretrained

    save_dir, _ = trained
    vocabulary = Vocabulary.load(qa_data / "dict.txt")
    dev = synthetic.write(tmp_path / "dev-v2.json", synthetic.likes_task(vocabulary, 30, seed=3, version_2=True))
    questions, version_2 = read_questions(dev)
    assert version_2 and sum(q.impossible for q in questions) == 10
    predictions, no_answer, summary = predict(from_pretrained(save_dir, "checkpoint_best.pt"), questions, True)
    assert {"best_f1", "best_f1_thresh", "HasAns_f1", "NoAns_f1", "exact_match", "f1"} <= set(summary)
    answers = {q.qid: q.answer_texts for q in questions}
    assert evaluate(answers, predictions)["f1"] == pytest.approx(summary["best_f1"]) == pytest.approx(summary["f1"])
    assert all((predictions[q] == "") == (no_answer[q] > summary["best_f1_thresh"]) for q in predictions)
