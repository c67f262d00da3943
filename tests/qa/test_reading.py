"""SQuAD and MRQA files read into questions; v2.0 recognised by its is_impossible marks."""

import json

from spanbert_text.qa_windows import WindowParams, encode_question
from spanbert_text.squad import read_questions

CONTEXT = "Ada Lovelace wrote the first program. She worked with Charles Babbage."


def test_squad_v1_and_v2(tmp_path):
    qas = [{"id": "a", "question": "Who wrote it?", "answers": [{"text": "Ada Lovelace", "answer_start": 0},
                                                                 {"text": "Lovelace", "answer_start": 4}]}]
    v1 = tmp_path / "v1.json"
    v1.write_text(json.dumps({"data": [{"paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    (question,), version_2 = read_questions(v1)
    assert not version_2 and question.answer_texts == ["Ada Lovelace", "Lovelace"]
    qas = [dict(qas[0], is_impossible=False),
           {"id": "b", "question": "Who paid?", "answers": [], "plausible_answers": [], "is_impossible": True}]
    v2 = tmp_path / "v2.json"
    v2.write_text(json.dumps({"data": [{"paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    questions, version_2 = read_questions(v2)
    assert version_2 and questions[1].impossible and questions[1].answers == ()


def test_mrqa_jsonl_is_converted_with_its_character_spans(tmp_path):
    start = CONTEXT.index("Charles Babbage")
    lines = [
        {"header": {"dataset": "Toy", "split": "dev"}},
        {"context": CONTEXT, "qas": [{"qid": "m1", "question": "With whom?", "answers": ["charles babbage"],
                                      "detected_answers": [{"text": "charles babbage",
                                                            "char_spans": [[start, start + 14]]}]}]},
    ]
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    (question,), version_2 = read_questions(path, "mrqa")
    assert question.qid == "m1" and question.answers == (("Charles Babbage", start),) and not version_2


def test_questions_of_one_paragraph_share_its_tokens(tmp_path, tokenizer_and_vocabulary):
    _, tokenizer, vocabulary = tokenizer_and_vocabulary
    qas = [{"id": str(i), "question": f"question {i}?", "answers": [{"text": "Ada", "answer_start": 0}]}
           for i in range(3)]
    path = tmp_path / "v1.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    questions, _ = read_questions(path)
    contexts = {}
    encoded = [encode_question(q, tokenizer, vocabulary, WindowParams(), contexts=contexts) for q in questions]
    assert encoded[0].context_ids is encoded[2].context_ids and len(contexts) == 1
