"""SQuAD's metric on crafted cases, each worked out by hand from the official scripts' rules."""

import pytest

from spanbert_text.squad_metric import best_scores, evaluate, gold_answers, normalize_answer

NORMALISED = [
    ("The Eiffel Tower", "eiffel tower"),  # lower case, article
    ("  New   York\tCity ", "new york city"),  # whitespace
    ("U.S.A.!", "usa"),  # punctuation removed, not replaced by a space
    ("an apple a day", "apple day"),  # every article
    ("theater another", "theater another"),  # articles only as whole words
    ("state-of-the-art", "stateoftheart"),  # the hyphen goes, so "the" is no longer a word
    ("A", ""),
]


@pytest.mark.parametrize("text, expected", NORMALISED)
def test_normalisation(text, expected):
    assert normalize_answer(text) == expected


# prediction, gold answers, exact match, F1 (best over the gold answers)
TABLE = [
    ("the Eiffel Tower", ["Eiffel Tower"], 1, 1.0),
    ("Eiffel Tower!", ["eiffel tower"], 1, 1.0),
    ("New York City", ["New York"], 0, 0.8),  # precision 2/3, recall 1
    ("York", ["New York"], 0, 2 / 3),  # precision 1, recall 1/2
    ("Paris", ["London", "paris."], 1, 1.0),  # several gold answers: the best counts
    ("big red dog", ["red", "a big dog"], 0, 0.8),  # F1 0.5 against "red", 0.8 against "big dog"
    ("cat cat", ["cat"], 0, 2 / 3),  # a repeated token counts once against one gold token
    ("state-of-the-art", ["state of the art"], 0, 0.0),
    ("Rome", ["Milan"], 0, 0.0),
    ("", [], 1, 1.0),  # v2.0: unanswerable, answered ""
    ("Paris", [], 0, 0.0),  # v2.0: unanswerable, answered
    ("", ["Paris"], 0, 0.0),  # v2.0: answerable, answered ""
    ("Paris", ["the", "Paris"], 1, 1.0),  # a gold answer normalising to nothing is dropped
]


@pytest.mark.parametrize("prediction, answers, em, f1", TABLE)
def test_exact_match_and_f1(prediction, answers, em, f1):
    assert best_scores(prediction, answers) == (em, pytest.approx(f1))


def test_an_unanswerable_question_has_the_empty_answer_alone():
    assert gold_answers([]) == [""] and gold_answers(["a", "an"]) == [""]


def test_summary_of_version_1():
    answers = {"q1": ["Paris"], "q2": ["New York"], "q3": ["Rome"]}
    summary = evaluate(answers, {"q1": "paris", "q2": "New York City", "q3": "Milan"})
    assert summary["exact_match"] == pytest.approx(100 / 3)
    assert summary["f1"] == pytest.approx(100 * (1 + 0.8 + 0) / 3)
    assert "HasAns_f1" not in summary and "best_f1" not in summary


def test_version_2_threshold_is_chosen_as_the_official_search():
    """Answering in increasing no-answer score: q1 (right, -2) brings 2 of 3; q2 (unanswerable, answered)
    takes one away; q3 (wrong) adds nothing. Best F1 2/3 at threshold -2; cut there q2 and q3 answer ""."""
    answers = {"q1": ["Paris"], "q2": [], "q3": ["Rome"]}
    predictions = {"q1": "Paris", "q2": "London", "q3": "Milan"}
    summary = evaluate(answers, predictions, {"q1": -2.0, "q2": 1.0, "q3": 3.0})
    assert summary["best_f1"] == pytest.approx(200 / 3) and summary["best_f1_thresh"] == -2.0
    assert summary["f1"] == pytest.approx(200 / 3) and summary["exact_match"] == pytest.approx(200 / 3)
    assert summary["HasAns_f1"] == pytest.approx(50.0) and summary["NoAns_f1"] == pytest.approx(100.0)
    assert summary["HasAns_total"] == 2 and summary["NoAns_total"] == 1


def test_version_2_with_every_question_best_left_unanswered():
    answers = {"q1": [], "q2": ["Rome"]}
    summary = evaluate(answers, {"q1": "x", "q2": "Milan"}, {"q1": 0.5, "q2": 1.5})
    assert summary["best_f1"] == pytest.approx(50.0) and summary["best_f1_thresh"] == 0.0


def test_a_question_without_prediction_is_refused():
    with pytest.raises(ValueError, match="1 questions have no prediction"):
        evaluate({"q1": ["a"], "q2": ["b"]}, {"q1": "a"})
