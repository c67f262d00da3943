"""The span_qa criterion's per-question reduction: any order and grouping of windows (batches,
workers, ranks) gives the official metric on each question's best span."""

import random

import pytest
from fairseq.logging import metrics

from spanbert_fairseq.criterions.span_qa import QUESTIONS_KEY, SpanQALoss
from spanbert_fairseq.criterions.squad_scores import SquadScoresMeter
from spanbert_text.squad_metric import best_scores, evaluate

GOLD = {"q0": ["Paris"], "q1": ["New York"], "q2": [], "q3": ["Rome"], "q4": []}
# Per question, its windows: (span text, span score, char start, null score).
WINDOWS = {
    "q0": [("Paris", 5.0, 10, 1.0), ("London", 3.0, 40, -1.0)],
    "q1": [("York", 2.0, 5, 0.5), ("New York City", 4.0, 1, 2.0), ("New York", 4.0, 1, 3.0)],
    "q2": [("Berlin", 1.0, 3, 4.0), ("Bonn", 0.5, 9, 6.0)],
    "q3": [("Milan", 6.0, 2, -2.0)],
    "q4": [("Oslo", 7.0, 0, 1.0), ("Oslo fjord", 2.0, 0, 0.0)],
}


def entries(version_2):
    result = []
    for qid, windows in WINDOWS.items():
        for text, score, start, null in windows:
            em, f1 = best_scores(text, GOLD[qid])
            result.append((qid, score, (-start, -start - len(text)), em, f1, null, bool(GOLD[qid]), version_2))
    return result


def expected(version_2):
    """The official evaluation of the best span per question (ties: the earlier, then shorter, span)."""
    best = {q: max(w, key=lambda w: (w[1], -w[2], -w[2] - len(w[0]))) for q, w in WINDOWS.items()}
    predictions = {q: w[0] for q, w in best.items()}
    no_answer = {q: min(x[3] for x in WINDOWS[q]) - best[q][1] for q in WINDOWS} if version_2 else None
    summary = evaluate(GOLD, predictions, no_answer)
    return summary["exact_match"], summary["best_f1"] if version_2 else summary["f1"]


@pytest.mark.parametrize("version_2", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_any_order_and_grouping_gives_the_official_scores(version_2, seed):
    shuffled = entries(version_2)
    random.Random(seed).shuffle(shuffled)
    cut = sorted(random.Random(seed + 100).sample(range(1, len(shuffled)), 3))
    batches = [shuffled[a:b] for a, b in zip([0, *cut], [*cut, len(shuffled)])]
    with metrics.aggregate(new_root=True) as agg:
        for batch in batches:  # as fairseq's validation: reduce_metrics once per batch, one aggregate
            SpanQALoss.reduce_metrics([{"loss": 1.0, "sample_size": 2, "questions": batch}])
        values = agg.get_smoothed_values()
    em, f1 = expected(version_2)
    assert values["exact_match"] == pytest.approx(round(em, 2)) and values["f1"] == pytest.approx(round(f1, 2))
    assert QUESTIONS_KEY not in values


def test_version_2_is_scored_at_the_threshold_chosen_on_these_questions():
    meter = SquadScoresMeter()
    meter.update(entries(True))
    exact_match, f1 = meter.scores()
    assert f1 == pytest.approx(expected(True)[1])
    assert f1 > SquadScoresMeter.scores(_all_answered())[1]  # q2 and q4 are better left unanswered


def _all_answered():
    meter = SquadScoresMeter()
    meter.update(entries(False))
    return meter


def test_training_batches_log_no_question_scores():
    with metrics.aggregate(new_root=True) as agg:
        SpanQALoss.reduce_metrics([{"loss": 4.0, "sample_size": 2}])
        values = agg.get_smoothed_values()
    assert "f1" not in values and values["loss"] == pytest.approx(2.0 / 0.6931471805599453, abs=1e-3)
