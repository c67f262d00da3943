"""Windowing and decoding of extractive QA: answers come back as the context's exact characters."""

import unicodedata

import numpy as np
import pytest

from spanbert_text.qa_windows import (
    NO_SPAN,
    WindowParams,
    decode_window,
    encode_question,
    max_context,
    row_tokens,
    windows,
)
from spanbert_text.squad import Question

SMALL = WindowParams(max_seq_length=48, doc_stride=16, max_query_length=12)


def test_pieces_keep_their_characters(tokenizer_and_vocabulary):
    kind, tokenizer, _ = tokenizer_and_vocabulary
    text = "  Le Café   d'Été, (1999) naïve--x  "
    pieces, spans = tokenizer.pieces_with_offsets(text)
    assert len(pieces) == len(spans) and spans
    assert all(0 <= s <= e <= len(text) and not text[s:e].startswith(" ") for s, e in spans)
    assert [s for s, e in spans] == sorted(s for s, e in spans)
    for piece, (s, e) in zip(pieces, spans):
        surface = piece.removeprefix("##").removeprefix("\u2581")
        if kind == "wordpiece-uncased":  # BERT uncased folds case and accents; the span keeps them
            surface_of_text = _fold(text[s:e])
        else:
            surface_of_text = text[s:e]
        assert piece in ("[UNK]", "<unk>") or surface == surface_of_text, (kind, piece, text[s:e])


def _fold(text):
    return "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")


def _questions_over(context):
    """Every whitespace-delimited word of the context, its first occurrence, as an answer."""
    questions, position = [], 0
    for n, word in enumerate(context.split()):
        start = context.index(word, position)
        position = start + len(word)
        questions.append(Question(str(n), "what is the word here ?", context, ((word, start),)))
    return questions


def test_round_trip_over_real_text(tokenizer_and_vocabulary, stdlib_documents):
    """Each word of a real paragraph is an answer; each lies whole in some window, labelled there,
    and the labelled tokens' characters are exactly the word. Windows cover the context in order."""
    kind, tokenizer, vocabulary = tokenizer_and_vocabulary
    context = " ".join(stdlib_documents[3][:8])
    assert len(context) > 600
    labelled = 0
    for question in _questions_over(context)[:150]:
        encoded = encode_question(question, tokenizer, vocabulary, SMALL)
        (word, start), = question.answers
        first, last = encoded.answer_tokens[0]
        assert context[encoded.offsets[first, 0]: encoded.offsets[last, 1]] == word, kind
        row_windows = windows(encoded, SMALL)
        assert row_windows[0].doc_start == 0
        assert row_windows[-1].doc_start + row_windows[-1].doc_length == len(encoded.context_ids)
        for w in row_windows:
            row = row_tokens(encoded, w, vocabulary.cls(), vocabulary.sep())
            assert len(row) <= SMALL.max_seq_length
            if w.start_position:
                offset = w.context_offset(len(encoded.question_ids))
                s, e = (p - offset + w.doc_start for p in (w.start_position, w.end_position))
                assert context[encoded.offsets[s, 0]: encoded.offsets[e, 1]] == word
                labelled += 1
        assert any(w.start_position for w in row_windows), (kind, word)
    assert labelled > 150  # overlapping windows label an answer more than once


def _answer_logits(encoded, window, first, last, length):
    """Row logits that point at context tokens first..last where the window holds them."""
    offset = window.context_offset(len(encoded.question_ids))
    start, end = np.zeros(length), np.zeros(length)
    start[0] = end[0] = 1.0  # a null score
    for token, logits in ((first, start), (last, end)):
        if window.doc_start <= token < window.doc_start + window.doc_length:
            logits[token - window.doc_start + offset] = 8.0
    return start, end


def test_an_answer_across_a_window_boundary_is_found_in_the_next_window(tokenizer_and_vocabulary, stdlib_documents):
    """The answer starts in window 0 and ends past it: window 0 cannot offer it (and is labelled
    [CLS]); window 1 holds it whole and labels it; decoding both, in either order, finds its text."""
    kind, tokenizer, vocabulary = tokenizer_and_vocabulary
    context = " ".join(stdlib_documents[3][:2])
    probe = encode_question(Question("p", "where ?", context, ()), tokenizer, vocabulary, SMALL)
    ws = windows(probe, SMALL)
    boundary = ws[0].doc_length  # first token outside window 0, inside window 1
    first, last = boundary - 2, boundary + 1
    char_start, char_end = int(probe.offsets[first, 0]), int(probe.offsets[last, 1])
    question = Question("q", "where ?", context, ((context[char_start:char_end], char_start),))
    encoded = encode_question(question, tokenizer, vocabulary, SMALL)
    ws = windows(encoded, SMALL)
    assert (ws[0].start_position, ws[0].end_position) == (0, 0) and ws[1].start_position > 0
    answers = []
    for w in ws[:2]:
        length = len(row_tokens(encoded, w, vocabulary.cls(), vocabulary.sep()))
        start, end = _answer_logits(encoded, w, first, last, length)
        answers.append(decode_window(start, end, encoded, context, w, ws, SMALL))
    assert answers[0].text != question.answers[0][0]
    for merged in (NO_SPAN.merge(answers[0]).merge(answers[1]), NO_SPAN.merge(answers[1]).merge(answers[0])):
        assert merged.text == question.answers[0][0]
        assert (merged.char_start, merged.char_end) == (char_start, char_end)
        assert merged.score == 16.0 and merged.null_score == 2.0


def test_a_token_in_two_windows_starts_a_span_only_where_it_has_most_context():
    class W:  # the two fields max_context reads
        def __init__(self, doc_start, doc_length):
            self.doc_start, self.doc_length = doc_start, doc_length

    a, b = W(0, 10), W(4, 10)
    assert max_context([a, b], a).tolist() == [True] * 7 + [False] * 3
    assert max_context([a, b], b).tolist() == [False] * 3 + [True] * 7


def test_decoding_respects_the_answer_length_and_order(tokenizer_and_vocabulary):
    _, tokenizer, vocabulary = tokenizer_and_vocabulary
    context = " ".join(["word"] * 40)
    params = WindowParams(max_seq_length=128, max_answer_length=3)
    encoded = encode_question(Question("q", "which ?", context, ()), tokenizer, vocabulary, params)
    (w,) = windows(encoded, params)
    length = len(row_tokens(encoded, w, vocabulary.cls(), vocabulary.sep()))
    offset = w.context_offset(len(encoded.question_ids))
    start, end = np.full(length, -10.0), np.full(length, -10.0)
    start[offset + 10] = 5.0
    end[offset + 2] = 9.0  # before the start: not a span
    end[offset + 20] = 8.0  # too long
    end[offset + 11] = 1.0
    answer = decode_window(start, end, encoded, context, w, [w], params)
    assert context[answer.char_start: answer.char_end] == answer.text
    assert answer.score == 6.0
    assert (answer.char_start, answer.char_end) == (int(encoded.offsets[10, 0]), int(encoded.offsets[11, 1]))


def test_question_is_cut_to_max_query_length(tokenizer_and_vocabulary):
    _, tokenizer, vocabulary = tokenizer_and_vocabulary
    question = Question("q", " ".join(["word"] * 100), "a short context", ())
    encoded = encode_question(question, tokenizer, vocabulary, WindowParams(max_query_length=64))
    assert len(encoded.question_ids) == 64


@pytest.mark.parametrize("field", ["max_seq_length", "doc_stride", "max_query_length", "n_best", "max_answer_length"])
def test_window_flags_must_be_positive(field):
    with pytest.raises(ValueError, match=f"--{field.replace('_', '-')} must be at least 1, got 0"):
        WindowParams(**{field: 0})
