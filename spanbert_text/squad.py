"""SQuAD v1.1 / v2.0 JSON files as distributed, and MRQA's jsonl, read into questions.

Every question carries its paragraph's context and its gold answers as (text, character start);
a file that is not SQuAD's, an answer_start that does not hold its text or an empty context stops
with one line naming the file and the place (`data[i].paragraphs[j].qas[k]`).
"""

import json
from dataclasses import dataclass

from .errors import UserInputError

SQUAD_SHAPE = '{"data": [{"paragraphs": [{"context": ..., "qas": [{"id", "question", "answers"}]}]}]}'


class SquadFormatError(UserInputError):
    """A question-answering file that cannot be read as SQuAD; the message names the file and place."""


@dataclass(frozen=True)
class Question:
    qid: str
    question: str
    context: str
    answers: tuple  # ((text, character start), ...); () when unanswerable
    impossible: bool = False

    @property
    def answer_texts(self):
        return [text for text, _ in self.answers]


def read_questions(path, input_format="squad"):
    """-> (questions, version_2): version_2 when the file marks questions `is_impossible` (v2.0)."""
    if input_format == "mrqa":
        return _from_squad(path, mrqa_to_squad(path)), False
    if input_format != "squad":
        raise SquadFormatError(f"--input-format must be squad or mrqa, not {input_format!r}")
    document = _load_json(path)
    questions = _from_squad(path, document)
    return questions, _is_version_2(document)


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise SquadFormatError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SquadFormatError(
            f"{path}: not JSON ({e}); a SQuAD file is one JSON object {SQUAD_SHAPE} "
            "(for MRQA's .jsonl pass --input-format mrqa)"
        ) from None


def _is_version_2(document):
    return any(
        "is_impossible" in qa
        for article in document["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]
    )


def _listed(path, obj, key, where):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, list):
        raise SquadFormatError(
            f"{path}: {where} has no {key!r} list, so this is not a SQuAD file (expected {SQUAD_SHAPE}; "
            "for MRQA's .jsonl pass --input-format mrqa)"
        )
    return value


def _from_squad(path, document):
    questions = []
    for i, article in enumerate(_listed(path, document, "data", "the top level")):
        for j, paragraph in enumerate(_listed(path, article, "paragraphs", f"data[{i}]")):
            place = f"data[{i}].paragraphs[{j}]"
            context = paragraph.get("context")
            if not isinstance(context, str) or not context.strip():
                raise SquadFormatError(f"{path}: {place}: empty context; give the paragraph's text or drop it")
            for k, qa in enumerate(_listed(path, paragraph, "qas", place)):
                questions.append(_question(path, f"{place}.qas[{k}]", qa, context))
    return questions


def _question(path, place, qa, context):
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or "id" not in qa:
        raise SquadFormatError(f"{path}: {place}: a question needs 'id' and 'question'")
    impossible = bool(qa.get("is_impossible", False))
    answers = []
    for a in [] if impossible else qa.get("answers", []):
        text, start = a.get("text"), a.get("answer_start")
        if not isinstance(text, str) or not isinstance(start, int):
            raise SquadFormatError(
                f"{path}: {place} (id {qa['id']}): an answer needs 'text' and an integer 'answer_start'"
            )
        if context[start:start + len(text)] != text:
            raise SquadFormatError(
                f"{path}: {place} (id {qa['id']}): answer_start {start} does not hold the answer {text!r} "
                f"(the context there reads {context[start:start + len(text)]!r}); correct answer_start"
            )
        answers.append((text, start))
    if not answers and not impossible:
        raise SquadFormatError(f"{path}: {place} (id {qa['id']}): no answers and not marked is_impossible")
    return Question(str(qa["id"]), qa["question"], context, tuple(answers), impossible)


def mrqa_to_squad(path):
    """MRQA's jsonl (a header line, then one context a line with its qas, each answer's
    `detected_answers` carrying character spans) as one SQuAD v1.1 document."""
    paragraphs = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise SquadFormatError(f"{path}: no such file") from None
    for lineno, line in enumerate(lines, 1):
        try:
            record = json.loads(line) if line.strip() else {}
        except json.JSONDecodeError as e:
            raise SquadFormatError(
                f"{path}:{lineno}: not a JSON line ({e.msg}); MRQA's files hold one JSON object a line"
            ) from None
        if "header" in record or not record:
            continue
        if "context" not in record or "qas" not in record:
            raise SquadFormatError(f"{path}:{lineno}: an MRQA line needs 'context' and 'qas'")
        qas = []
        for qa in record["qas"]:
            # char_spans are inclusive [start, end]: the answer is the context's own characters there.
            spans = [d["char_spans"][0] for d in qa.get("detected_answers", [])]
            qas.append({"id": qa["qid"], "question": qa["question"],
                        "answers": [{"text": record["context"][s:e + 1], "answer_start": s} for s, e in spans]})
        paragraphs.append({"context": record["context"], "qas": qas})
    return {"data": [{"title": "mrqa", "paragraphs": paragraphs}]}
