"""A span_qa checkpoint on a SQuAD file: predictions.json (question id -> answer text, the official
format) and eval.json (the official scores; v2.0 with the no-answer threshold chosen on this file).

    python -m spanbert_fairseq.evaluation.squad CHECKPOINT DEV_JSON OUT_DIR [--vocab-dir DIR]
        [--input-format squad|mrqa] [--batch-size 32]

CHECKPOINT: a checkpoint file or a save directory (checkpoint_best.pt first). The summary line
goes to stderr.
"""

import argparse
import json
import os
import sys
import time

from spanbert_text.errors import UserInputError, run_cli
from spanbert_text.files import write_text
from spanbert_text.squad import read_questions
from spanbert_text.squad_metric import apply_threshold, evaluate

from ..hub.loading import from_pretrained

PROG = "spanbert_fairseq.evaluation.squad"


def _parser():
    p = argparse.ArgumentParser(prog=PROG, description="Answer a SQuAD file with a span_qa checkpoint and score it.")
    p.add_argument("checkpoint", help="a span_qa checkpoint file, or the save directory holding checkpoint_best.pt")
    p.add_argument("data_file", help="SQuAD v1.1 / v2.0 JSON (or MRQA jsonl with --input-format mrqa)")
    p.add_argument("out_dir", help="where predictions.json and eval.json go")
    p.add_argument("--vocab-dir", help="the checkpoint's vocabulary (default: where the hub finds it)")
    p.add_argument("--input-format", choices=("squad", "mrqa"), default="squad")
    p.add_argument("--batch-size", type=int, default=32, help="windows per forward pass")
    return p


def predict(hub, questions, version_2, batch_size=32):
    """-> (predictions, no-answer scores or None, eval summary) for `questions` (spanbert_text.squad)."""
    best = hub.answer_questions(questions, batch_size=batch_size)
    predictions = {q: a.text for q, a in best.items()}
    answers = {q.qid: q.answer_texts for q in questions}
    no_answer = {q: a.no_answer_score for q, a in best.items()} if version_2 else None
    summary = evaluate(answers, predictions, no_answer)
    if version_2:
        predictions = apply_threshold(predictions, no_answer, summary["best_f1_thresh"])
    return predictions, no_answer, summary


def run(argv=None):
    args = _parser().parse_args(argv)
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, got {args.batch_size}")
    started = time.monotonic()
    questions, version_2 = read_questions(args.data_file, args.input_format)
    name = None if os.path.isfile(args.checkpoint) else "checkpoint_best.pt"
    hub = from_pretrained(args.checkpoint, name, args.vocab_dir)
    predictions, no_answer, summary = predict(hub, questions, version_2, args.batch_size)
    os.makedirs(args.out_dir, exist_ok=True)
    text = json.dumps(predictions, indent=1, ensure_ascii=False) + "\n"
    write_text(os.path.join(args.out_dir, "predictions.json"), text)
    if no_answer is not None:
        write_text(os.path.join(args.out_dir, "no_answer_scores.json"), json.dumps(no_answer, indent=1) + "\n")
    write_text(os.path.join(args.out_dir, "eval.json"), json.dumps(summary, indent=1, sort_keys=True) + "\n")
    extra = f", best_f1 {summary['best_f1']:.2f} at threshold {summary['best_f1_thresh']:.3f}" if version_2 else ""
    print(f"{PROG}: {len(questions)} questions of {args.data_file}: exact_match {summary['exact_match']:.2f}, "
          f"f1 {summary['f1']:.2f}{extra}; wrote {args.out_dir}/predictions.json and eval.json "
          f"({time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(run_cli(PROG, run))
