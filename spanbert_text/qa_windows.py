"""Extractive QA inputs and outputs: a question and its context as token windows, and back.

A question becomes `[CLS] question [SEP] window [SEP]` rows, the context cut into windows of at
most `max_seq_length` tokens that start `doc_stride` tokens apart (the authors' windowing); each
context token keeps its characters in the context, so a predicted span is the context's own text.
Labels are token positions in the row, 0 (`[CLS]`) when the answer is not inside the window.
Decoding is the authors' n-best search: the `n_best` highest start and end logits of each window,
pairs kept when start <= end, both in the context, at most `max_answer_length` tokens, and the start
in the window where it has most context on both sides.
"""

from dataclasses import dataclass

import numpy as np

from .errors import UserInputError


@dataclass(frozen=True)
class WindowParams:
    max_seq_length: int = 512
    doc_stride: int = 128
    max_query_length: int = 64
    n_best: int = 20
    max_answer_length: int = 30

    def __post_init__(self):
        for name in ("max_seq_length", "doc_stride", "max_query_length", "n_best", "max_answer_length"):
            if getattr(self, name) < 1:
                raise UserInputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class EncodedQuestion:
    """A question's ids (cut to max_query_length) and its context's ids with their (start, end) characters."""

    question_ids: np.ndarray  # (q,) int32
    context_ids: np.ndarray  # (n,) int32, shared by the questions of one paragraph
    offsets: np.ndarray  # (n, 2) int32, characters of each context token
    answer_tokens: tuple  # ((first token, last token), ...) of each gold answer; () when unanswerable


@dataclass(frozen=True)
class Window:
    doc_start: int  # first context token in the window
    doc_length: int
    start_position: int  # of the first gold answer in the row; 0 ([CLS]) when outside the window
    end_position: int

    def context_offset(self, question_length):
        """Row position of the window's first context token: after [CLS] question [SEP]."""
        return question_length + 2


def encode_question(question, text_tokenizer, vocabulary, params, where="the question", contexts=None):
    """Question -> EncodedQuestion; `where` names it in the error for a question leaving no room.
    `contexts` (a dict kept across calls) tokenizes each paragraph once for all its questions."""
    pieces, _ = text_tokenizer.pieces_with_offsets(question.question)
    question_ids = np.array([vocabulary.index(p) for p in pieces[: params.max_query_length]], dtype=np.int32)
    contexts = {} if contexts is None else contexts
    if question.context not in contexts:
        contexts[question.context] = _encode_context(question.context, text_tokenizer, vocabulary, where)
    context_ids, offsets = contexts[question.context]
    if params.max_seq_length - len(question_ids) - 3 < 1:
        raise UserInputError(
            f"{where}: the question's {len(question_ids)} tokens leave no room for the context in a window of "
            f"--max-seq-length {params.max_seq_length} ([CLS] question [SEP] context [SEP]); raise "
            "--max-seq-length or lower --max-query-length"
        )
    answers = tuple(answer_tokens(offsets, start, start + len(text)) for text, start in question.answers)
    return EncodedQuestion(question_ids, context_ids, offsets, answers)


def _encode_context(context, text_tokenizer, vocabulary, where):
    pieces, spans = text_tokenizer.pieces_with_offsets(context)
    if not pieces:
        raise UserInputError(f"{where}: the context holds no token; give the paragraph's text or drop it")
    ids = np.array([vocabulary.index(p) for p in pieces], dtype=np.int32)
    return ids, np.array(spans, dtype=np.int32).reshape(-1, 2)


def answer_tokens(offsets, char_start, char_end):
    """(first, last) context token covering characters [char_start, char_end)."""
    nonempty = offsets[:, 1] > offsets[:, 0]
    overlapping = np.flatnonzero(nonempty & (offsets[:, 1] > char_start) & (offsets[:, 0] < char_end))
    if len(overlapping) == 0:  # an answer of whitespace only: the token after it
        following = np.flatnonzero(offsets[:, 0] >= char_start)
        first = int(following[0]) if len(following) else len(offsets) - 1
        return first, first
    return int(overlapping[0]), int(overlapping[-1])


def windows(encoded, params):
    """The windows of a question's context, each labelled with the first gold answer."""
    room = params.max_seq_length - len(encoded.question_ids) - 3
    n = len(encoded.context_ids)
    result, start = [], 0
    while True:
        length = min(n - start, room)
        result.append(_labelled(encoded, start, length))
        if start + length == n:
            return result
        start += min(length, params.doc_stride)


def _labelled(encoded, doc_start, doc_length):
    if not encoded.answer_tokens:
        return Window(doc_start, doc_length, 0, 0)
    first, last = encoded.answer_tokens[0]
    if first < doc_start or last >= doc_start + doc_length:
        return Window(doc_start, doc_length, 0, 0)
    shift = len(encoded.question_ids) + 2 - doc_start
    return Window(doc_start, doc_length, first + shift, last + shift)


def row_tokens(encoded, window, cls, sep):
    """(T,) int64: [CLS] question [SEP] window [SEP]."""
    context = encoded.context_ids[window.doc_start: window.doc_start + window.doc_length]
    return np.concatenate([[cls], encoded.question_ids, [sep], context, [sep]]).astype(np.int64)


def max_context(all_windows, window):
    """(doc_length,) bool: True where `window` gives the token most context on both sides among
    all the question's windows (score: the nearer side's distance plus 1% of the window's length)."""
    def score(w, positions):
        inside = (positions >= w.doc_start) & (positions < w.doc_start + w.doc_length)
        nearer = np.minimum(positions - w.doc_start, w.doc_start + w.doc_length - 1 - positions)
        return np.where(inside, nearer + 0.01 * w.doc_length, -np.inf)

    positions = np.arange(window.doc_start, window.doc_start + window.doc_length)
    best = np.max([score(w, positions) for w in all_windows], axis=0)
    return score(window, positions) >= best


@dataclass(frozen=True)
class Answer:
    """A question's best span over the windows seen so far, and its smallest null score."""

    score: float  # start + end logit of the span; -inf when no window offered one
    text: str
    char_start: int
    char_end: int
    null_score: float  # min over windows of the [CLS] start + end logits

    def merge(self, other):
        """Associative and commutative: windows may come in any order and any grouping."""
        # Equal scores: the earlier, then the shorter span, so that every merge order agrees.
        best = self if self._rank() >= other._rank() else other
        return Answer(best.score, best.text, best.char_start, best.char_end, min(self.null_score, other.null_score))

    def _rank(self):
        return self.score, -self.char_start, -self.char_end

    @property
    def no_answer_score(self):
        """The v2.0 score for answering "": the null score minus the best span's."""
        return self.null_score - self.score


NO_SPAN = Answer(float("-inf"), "", 0, 0, float("inf"))


def decode_window(start_logits, end_logits, encoded, context, window, all_windows, params):
    """The window's Answer: its best span (n-best search) and its null score.

    start_logits, end_logits: (T,) logits of the window's row (T its real length, no padding).
    """
    offset = window.context_offset(len(encoded.question_ids))
    in_context = np.zeros(len(start_logits), dtype=bool)
    in_context[offset: offset + window.doc_length] = True
    starts_allowed = np.zeros(len(start_logits), dtype=bool)
    starts_allowed[offset: offset + window.doc_length] = max_context(all_windows, window)
    best, best_span = float("-inf"), None
    for s in _top(start_logits, params.n_best):
        if not starts_allowed[s]:
            continue
        for e in _top(end_logits, params.n_best):
            if in_context[e] and s <= e < s + params.max_answer_length:
                score = float(start_logits[s] + end_logits[e])
                if score > best:
                    best, best_span = score, (s, e)
    null = float(start_logits[0] + end_logits[0])
    if best_span is None:
        return Answer(float("-inf"), "", 0, 0, null)
    first, last = (p - offset + window.doc_start for p in best_span)
    char_start, char_end = int(encoded.offsets[first, 0]), int(encoded.offsets[last, 1])
    return Answer(best, context[char_start:char_end], char_start, char_end, null)


def _top(logits, n):
    """Indices of the n largest values, largest first (ties: the earlier index first)."""
    order = np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")
    return order[:n].tolist()
