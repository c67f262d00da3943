"""A small SQuAD-format set from real text no one in the project wrote: Python's pydoc topic pages.

Each question is a sentence of a paragraph with one word replaced by "what"; its answer is that
word where the sentence stands in the paragraph (cloze questions). Train and dev come from
different topics. Used by hf_squad_reference.py and bench_finetune.py.
"""

import json
import random
import re

_SENTENCE = re.compile(r"[^.!?]+[.!?]")
_WORD = re.compile(r"\b[A-Za-z]{4,}\b")


def cloze_questions(documents, limit, seed, per_paragraph=2, max_context_chars=900):
    """Up to `limit` questions (`per_paragraph` a paragraph, from distinct sentences) as one SQuAD
    document, from `documents` (lists of paragraph lines)."""
    rng = random.Random(seed)
    paragraphs, count = [], 0
    for d, document in enumerate(documents):
        for p, context in enumerate(document):
            if not 200 <= len(context) <= max_context_chars:
                continue
            sentences = [m for m in _SENTENCE.finditer(context) if len(_WORD.findall(m.group())) >= 3]
            qas = []
            for k, sentence in enumerate(rng.sample(sentences, min(per_paragraph, len(sentences)))):
                word = rng.choice(list(_WORD.finditer(sentence.group()))[1:])  # not the sentence's first word
                question = sentence.group()[: word.start()] + "what" + sentence.group()[word.end():]
                qas.append({"id": f"d{d}p{p}q{k}", "question": question.strip(),
                            "answers": [{"text": word.group(), "answer_start": sentence.start() + word.start()}]})
            if qas:
                paragraphs.append({"context": context, "qas": qas})
    rng.shuffle(paragraphs)
    kept = []
    for paragraph in paragraphs:
        if count >= limit:
            break
        kept.append(paragraph)
        count += len(paragraph["qas"])
    return {"version": "1.1", "data": [{"title": "pydoc topics", "paragraphs": kept}]}


def write_sets(directory, train_questions, dev_questions, seed=1):
    """train.json and dev.json in `directory` from disjoint pydoc topics; returns their paths."""
    from spanbert_preprocess.default_corpus import pydoc_topic_documents

    documents = pydoc_topic_documents()
    cut = int(len(documents) * 0.8)
    paths = []
    for name, docs, count in (("train.json", documents[:cut], train_questions),
                              ("dev.json", documents[cut:], dev_questions)):
        path = directory / name
        path.write_text(json.dumps(cloze_questions(docs, count, seed)), encoding="utf-8")
        paths.append(path)
    return paths
