"""SQuAD's exact match and F1, v1.1 and v2.0, as pure functions of strings.

The rules are those of the official evaluation scripts: an answer is normalised (lower case,
punctuation removed, the articles a/an/the removed, whitespace collapsed), a prediction is scored
against each gold answer and the best score counts. v2.0 adds unanswerable questions, whose only
gold answer is the empty string, and a no-answer threshold chosen on dev (`best_threshold`).
Scores are fractions in [0, 1] per question and percentages in the summaries.
"""

import re
import string
from collections import Counter

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text):
    """The official normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction, gold):
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction, gold):
    """Token F1 of the normalised strings; an empty side scores 1 only against another empty one."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answers):
    """The gold texts a prediction is scored against: those that normalise to something, else
    the empty answer alone (an unanswerable v2.0 question), as the v2.0 script does."""
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def best_scores(prediction, answers):
    """(exact match, F1) of `prediction`: the best over the gold answers."""
    golds = gold_answers(answers)
    return max(exact_match(prediction, g) for g in golds), max(f1(prediction, g) for g in golds)


def best_threshold(scores, no_answer_scores, has_answer, predicted_nonempty):
    """The no-answer threshold that maximises the mean of `scores` (the v2.0 script's search).

    All four are dicts keyed by question id: the score of the span predicted, the no-answer score
    (null score minus the best span's; a question is answered "" when it exceeds the threshold),
    whether gold has an answer, whether the span predicted is non-empty. Starting from "every
    question unanswered", questions are answered in increasing no-answer score.
    Returns (best mean score in %, threshold).
    """
    current = sum(1 for q in scores if not has_answer[q])
    best, threshold = current, 0.0
    for q in sorted(scores, key=lambda q: no_answer_scores[q]):
        if has_answer[q]:
            current += scores[q]
        elif predicted_nonempty[q]:
            current -= 1
        if current > best:
            best, threshold = current, no_answer_scores[q]
    return 100.0 * best / max(len(scores), 1), threshold


def evaluate(answers, predictions, no_answer_scores=None):
    """The official summary for `predictions` (question id -> text) against `answers` (id -> gold
    texts; [] for an unanswerable question): exact_match and f1 in %, over every question.

    With `no_answer_scores` (v2.0; id -> null score minus best span score, `predictions` holding the
    best non-empty spans) the threshold is chosen on these questions: best_exact / best_f1 and their
    thresholds, and exact_match / f1 / HasAns_* / NoAns_* of the predictions cut at best_f1_thresh.
    """
    missing = sorted(set(answers) - set(predictions))
    if missing:
        raise ValueError(f"{len(missing)} questions have no prediction (first: {missing[0]!r})")
    has_answer = {q: bool(gold_answers(answers[q])[0]) for q in answers}
    if no_answer_scores is not None:
        raw = {q: best_scores(predictions[q], answers[q]) for q in answers}
        nonempty = {q: bool(predictions[q]) for q in answers}
        exact_scores, f1_scores = ({q: s[i] for q, s in raw.items()} for i in (0, 1))
        best_exact, exact_thresh = best_threshold(exact_scores, no_answer_scores, has_answer, nonempty)
        best_f1, f1_thresh = best_threshold(f1_scores, no_answer_scores, has_answer, nonempty)
        predictions = apply_threshold(predictions, no_answer_scores, f1_thresh)
    summary = _summary(answers, predictions, has_answer)
    if no_answer_scores is not None:
        summary.update(best_exact=best_exact, best_exact_thresh=exact_thresh, best_f1=best_f1, best_f1_thresh=f1_thresh)
    return summary


def apply_threshold(predictions, no_answer_scores, threshold):
    """The predictions answered "" where the no-answer score exceeds `threshold`."""
    return {q: "" if no_answer_scores[q] > threshold else text for q, text in predictions.items()}


def _summary(answers, predictions, has_answer):
    scored = {q: best_scores(predictions[q], answers[q]) for q in answers}
    summary = _means(scored, list(answers))
    if not all(has_answer.values()):  # v2.0 reports the two kinds of question apart
        for name, wanted in (("HasAns", True), ("NoAns", False)):
            part = [q for q in answers if has_answer[q] == wanted]
            if part:
                means = _means(scored, part)
                summary.update({f"{name}_exact": means["exact_match"], f"{name}_f1": means["f1"],
                                f"{name}_total": len(part)})
    return summary


def _means(scored, questions):
    n = max(len(questions), 1)
    return {
        "exact_match": 100.0 * sum(scored[q][0] for q in questions) / n,
        "f1": 100.0 * sum(scored[q][1] for q in questions) / n,
        "total": len(questions),
    }
