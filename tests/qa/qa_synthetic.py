"""A small synthetic span task in SQuAD's format: each context states who likes what (one or two
words), in random order among filler sentences; the question asks what someone likes."""

import json
import random


def words_of(vocabulary, count, seed):
    """`count` distinct whole-word alphabetic tokens of the vocabulary (each one piece)."""
    candidates = sorted(s for s in vocabulary.symbols if s.isalpha() and s.islower() and len(s) >= 3)
    return random.Random(seed).sample(candidates, count)


def likes_task(vocabulary, questions, seed, people_per_context=1, version_2=False):
    """A SQuAD v1.1 (or, with version_2, v2.0: a third of the questions ask about someone absent)
    document with `questions` questions."""
    rng = random.Random(seed)
    names, things, filler = (words_of(vocabulary, 60, 1)[i::3] for i in range(3))
    paragraphs = []
    for n in range(questions):
        people = rng.sample(names, people_per_context)
        liked = [" ".join(rng.sample(things, rng.choice((1, 2)))) for _ in people]
        sentences = [f"{p} likes {t} ." for p, t in zip(people, liked)]
        sentences += [" ".join(rng.sample(filler, 4)) + " ." for _ in range(2)]
        rng.shuffle(sentences)
        context = " ".join(sentences)
        asked = rng.randrange(people_per_context)
        qa = {"id": f"q{n}", "question": f"what does {people[asked]} like ?"}
        if version_2 and n % 3 == 0:
            absent = rng.choice([p for p in names if p not in people])
            qa.update(question=f"what does {absent} like ?", answers=[], is_impossible=True)
        else:
            start = context.index(f"{people[asked]} likes ") + len(f"{people[asked]} likes ")
            qa["answers"] = [{"text": liked[asked], "answer_start": start}]
            if version_2:
                qa["is_impossible"] = False
        paragraphs.append({"context": context, "qas": [qa]})
    return {"version": "2.0" if version_2 else "1.1", "data": [{"title": "likes", "paragraphs": paragraphs}]}


def write(path, document):
    path.write_text(json.dumps(document), encoding="utf-8")
    return path
