"""SQuAD's exact match and F1 accumulated over a validation run, one question at a time.

Each window of a batch yields its question's best span there; a question's windows may sit in
different batches, workers or ranks. The reduction per question (keep the best-scored span with its
scores, the smallest null score) is associative, so the meter merges windows in any order, and the
scores are computed once every window has been seen: when fairseq reads the smoothed values.
"""

from fairseq.logging.meters import Meter

from spanbert_text.squad_metric import best_threshold

# One window's result, as it travels in a logging output (plain values, picklable for all_gather):
# (question id, span score, (-char_start, -char_end), exact match, F1, null score, gold has an answer,
# file is v2.0). Equal scores go to the earlier, then shorter, span: a total order, so any merge order agrees.
QID, SCORE, ORDER, EM, F1, NULL, HAS_ANSWER, VERSION_2 = range(8)


def merge_window(best, entry):
    """The question's entry after one more window: the best span and the smaller null score."""
    if best is None:
        return tuple(entry)
    chosen = best if (best[SCORE], best[ORDER]) >= (entry[SCORE], entry[ORDER]) else entry
    return chosen[:NULL] + (min(best[NULL], entry[NULL]),) + chosen[NULL + 1:]


class SquadScoresMeter(Meter):
    """question id -> its merged entry; `scores()` -> (exact_match, f1) in %, as the official
    scripts compute them (v2.0: at the no-answer threshold that maximises F1 on these questions)."""

    def __init__(self):
        self.questions = {}

    def update(self, entries):
        for entry in entries:
            self.questions[entry[QID]] = merge_window(self.questions.get(entry[QID]), entry)

    def reset(self):
        self.questions = {}

    def state_dict(self):
        return {"questions": self.questions}

    def load_state_dict(self, state_dict):
        self.questions = dict(state_dict["questions"])

    @property
    def smoothed_value(self):
        return len(self.questions)

    def scores(self):
        entries = list(self.questions.values())
        if not entries:
            return 0.0, 0.0
        if not any(e[VERSION_2] for e in entries):
            return tuple(100.0 * sum(e[k] for e in entries) / len(entries) for k in (EM, F1))
        has_answer = {e[QID]: e[HAS_ANSWER] for e in entries}
        no_answer = {e[QID]: e[NULL] - e[SCORE] for e in entries}
        nonempty = {e[QID]: e[SCORE] > float("-inf") for e in entries}
        f1, threshold = best_threshold({e[QID]: e[F1] for e in entries}, no_answer, has_answer, nonempty)
        # Exact match at the threshold F1 chose: "" scores 1 exactly where gold has no answer.
        cut = [(e[EM] if no_answer[e[QID]] <= threshold else float(not e[HAS_ANSWER])) for e in entries]
        return 100.0 * sum(cut) / len(entries), f1
