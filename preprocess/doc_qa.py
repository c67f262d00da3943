"""A cloze span-extraction set in SQuAD v1.1 format, made from a corpus in spanbert-preprocess's input format.

    python -m spanbert_preprocess.doc_qa OUTDIR [CORPUS] [--valid-fraction 0.1] [--seed 1]
                                         [--train-questions 3000] [--dev-questions 300]

Each question is a sentence of a document with one term blanked out (replaced by `what`); its context
is the sentences around it in the same document, without the question's sentence, in which that term
occurs again: the answer is the term there. A term is a word or dotted identifier of 3 or more
characters outside the corpus's 300 most frequent words, that occurs once in its sentence. Nothing of
the answer is in the question, so the model has to find which of the context's terms fits the gap.

Dev documents are those `spanbert-preprocess CORPUS --valid-fraction F --seed S` holds out (the
same function picks them), so a model pretrained on that split has seen neither the dev contexts nor
their questions. Without CORPUS: the embedded default corpus (Python's own documentation).
Deterministic given the corpus, the flags and `--sample-seed`.
"""

import argparse
import collections
import json
import os
import random
import re
import sys
import tempfile

from spanbert_preprocess import PreprocessError, default_corpus
from spanbert_preprocess.cli import labelled_documents
from spanbert_preprocess.text_input import TextReader, check_input_files
from spanbert_text.errors import run_cli
from spanbert_text.files import atomic_path

BLANK = "what"
FREQUENT_WORDS = 300  # the most frequent words are never answers: too many fit any gap
MIN_TERM_CHARS = 3
MIN_QUESTION_WORDS, MAX_QUESTION_CHARS = 5, 200  # short enough for a 128-token window beside context
# A word or dotted identifier (os.path.join), not a part of a longer one.
TERM = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?![\w]|\.\w)")
# A sentence ends at . ! or ? followed by space and a capital, a quote or a parenthesis.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(`])")


def sentences(document_lines):
    return [s for line in document_lines for s in SENTENCE_END.split(line) if s]


def occurrences(term, text):
    """Character offsets of `term` in `text` as a whole word or identifier."""
    pattern = r"(?<![\w.])" + re.escape(term) + r"(?![\w]|\.\w)"
    return [m.start() for m in re.finditer(pattern, text)]


def frequent_words(documents, count=FREQUENT_WORDS):
    counts = collections.Counter(m.group().lower() for doc in documents for line in doc for m in TERM.finditer(line))
    return {word for word, _ in counts.most_common(count)}


def context_around(sents, i, max_chars):
    """The sentences nearest to sentence i (alternately before and after), in order, within max_chars."""
    chosen, total = [], 0
    for distance in range(1, len(sents)):
        for j in (i - distance, i + distance):
            if 0 <= j < len(sents):
                if total + len(sents[j]) + 1 > max_chars:
                    return " ".join(sents[k] for k in sorted(chosen))
                chosen.append(j)
                total += len(sents[j]) + 1
    return " ".join(sents[k] for k in sorted(chosen))


def candidate_terms(text, frequent):
    return [
        m.group() for m in TERM.finditer(text) if len(m.group()) >= MIN_TERM_CHARS and m.group().lower() not in frequent
    ]


def document_questions(lines, frequent, max_context_chars, rng):
    """(question, context, answer text, answer starts) for each sentence of the document that makes one."""
    sents = sentences(lines)
    result = []
    for i, sentence in enumerate(sents):
        if len(sentence.split()) < MIN_QUESTION_WORDS or len(sentence) > MAX_QUESTION_CHARS:
            continue
        context = context_around(sents, i, max_context_chars)
        if sentence in context:  # the document repeats it: the question would be a string match
            continue
        terms = sorted({t for t in candidate_terms(sentence, frequent) if len(occurrences(t, sentence)) == 1})
        terms = [t for t in terms if occurrences(t, context)]
        if not terms:
            continue
        term = rng.choice(terms)
        start = occurrences(term, sentence)[0]
        question = sentence[:start] + BLANK + sentence[start + len(term) :]
        result.append((question, context, term, occurrences(term, context)))
    return result


def split_documents(corpus, valid_fraction, seed):
    """(train, dev) lists of (title, lines): dev is what spanbert-preprocess holds out with these flags."""
    args = argparse.Namespace(inputs=[corpus], valid=None, valid_fraction=valid_fraction, seed=seed)
    splits = {"train": [], "valid": []}
    for doc, split in labelled_documents(TextReader(), args):
        splits[split].append((f"{os.path.basename(doc.path)}:{doc.first_line}", doc.lines))
    return splits["train"], splits["valid"]


def build_split(documents, frequent, max_context_chars, rng, wanted, prefix):
    """SQuAD v1.1 `data` for up to `wanted` questions drawn from the documents, in document order."""
    found = [
        (title, q) for title, lines in documents for q in document_questions(lines, frequent, max_context_chars, rng)
    ]
    keep = sorted(rng.sample(range(len(found)), min(wanted, len(found))))
    articles = collections.OrderedDict()
    for n, k in enumerate(keep):
        title, (question, context, answer, starts) = found[k]
        answers = [{"text": answer, "answer_start": s} for s in starts]
        qa = {"id": f"{prefix}-{n:05d}", "question": question, "answers": answers}
        articles.setdefault(title, []).append({"context": context, "qas": [qa]})
    return [{"title": title, "paragraphs": paragraphs} for title, paragraphs in articles.items()], len(found)


def baselines(data, frequent):
    """Exact match (%) of answering the context's first term, and the expected one of a random term."""
    first = chance = n = 0
    for article in data:
        for paragraph in article["paragraphs"]:
            terms = candidate_terms(paragraph["context"], frequent)
            for qa in paragraph["qas"]:
                n += 1
                first += terms[0] == qa["answers"][0]["text"]
                chance += 1 / len(set(terms))
    return 100 * first / max(n, 1), 100 * chance / max(n, 1)


def write_json(path, value):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="doc_qa", description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", help="writes train.json, dev.json (SQuAD v1.1) and stats.json here")
    p.add_argument("corpus", nargs="?", help="spanbert-preprocess input text (default: the embedded default corpus)")
    p.add_argument("--valid-fraction", type=float, default=0.1,
                   help="dev documents: those spanbert-preprocess holds out with this fraction (default 0.1)")
    p.add_argument("--seed", type=int, default=1, help="spanbert-preprocess's --seed for the held-out documents")
    p.add_argument("--sample-seed", type=int, default=1, help="chooses the blanked terms and the questions kept")
    p.add_argument("--train-questions", type=int, default=3000)
    p.add_argument("--dev-questions", type=int, default=300)
    p.add_argument("--max-context-chars", type=int, default=400,
                   help="context: the sentences around the question's, up to this many characters (default 400)")
    args = p.parse_args(argv)
    if not 0.0 < args.valid_fraction < 1.0:
        p.error("--valid-fraction must be in (0, 1): the dev documents are the held-out ones")
    if min(args.train_questions, args.dev_questions, args.max_context_chars) < 1:
        p.error("--train-questions, --dev-questions and --max-context-chars must be positive")
    return args


def make(args, corpus, label):
    train_docs, dev_docs = split_documents(corpus, args.valid_fraction, args.seed)
    if not dev_docs:
        raise PreprocessError(f"{corpus}: no document held out with --valid-fraction {args.valid_fraction}; raise it")
    frequent = frequent_words(lines for _, lines in train_docs)
    rng = random.Random(args.sample_seed)
    stats = {"corpus": label, "train_documents": len(train_docs), "dev_documents": len(dev_docs)}
    for name, docs, wanted in (("train", train_docs, args.train_questions), ("dev", dev_docs, args.dev_questions)):
        data, available = build_split(docs, frequent, args.max_context_chars, rng, wanted, name)
        write_json(os.path.join(args.outdir, f"{name}.json"), {"version": "1.1", "data": data})
        first, chance = baselines(data, frequent)
        questions = sum(len(a["paragraphs"]) for a in data)
        stats[name] = {"questions": questions, "available": available, "articles": len(data),
                       "first_term_em": round(first, 2), "random_term_em": round(chance, 2)}
    write_json(os.path.join(args.outdir, "stats.json"), stats)
    return stats


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def run(_):
        os.makedirs(args.outdir, exist_ok=True)
        if args.corpus:
            check_input_files([args.corpus])
            stats = make(args, args.corpus, args.corpus)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                corpus = os.path.join(tmp, "default_corpus.txt")
                default_corpus.write_default_corpus(corpus)
                stats = make(args, corpus, "the default corpus")
        t, d = stats["train"], stats["dev"]
        print(
            f"doc_qa: {t['questions']} train questions ({stats['train_documents']} documents), "
            f"{d['questions']} dev questions ({stats['dev_documents']} held-out documents) from "
            f"{stats['corpus']}; dev baselines: first term {d['first_term_em']}% EM, random term "
            f"{d['random_term_em']}% -> {os.path.abspath(args.outdir)}/{{train,dev,stats}}.json"
        )

    return run_cli("doc_qa", run)


if __name__ == "__main__":
    sys.exit(main())
