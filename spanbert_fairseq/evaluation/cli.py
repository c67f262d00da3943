"""spanbert-eval: mask a split once, run every checkpoint on those masks, report per span length.

    spanbert-eval CHECKPOINT [CHECKPOINT ...] --data DIR [--split valid]
        [--masking-scheme span|subword|whole_word] [--seed S] [--json OUT] [--plot OUT.png]

The markdown tables go to stdout; progress and the closing summary line to stderr.
"""

import argparse
import hashlib
import sys
import time

from spanbert_text.errors import UserInputError, run_cli

from ..data.span_masking_fast import SCHEMES
from .checkpoints import load_model
from .masked_split import MaskedSplit
from .report import markdown, plot_accuracy, write_json
from .scores import SpanLengthScores

PROG = "spanbert-eval"
PROGRESS_EVERY_S = 10.0


def _parser():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Judge span_bert checkpoints (fairseq-train's, spanbert-import's, or HuggingFace BERT "
        "directories) on the same masked blocks: MLM and SBO accuracy and loss, and exact match of whole "
        "spans, per span length in words.",
    )
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                   help="a checkpoint file, a directory holding one, or a HuggingFace BERT directory")
    p.add_argument("--data", required=True, help="a directory spanbert-preprocess wrote (dict.txt, SPLIT.bin/.idx)")
    p.add_argument("--split", default="valid", help="the split to evaluate on (default: valid)")
    p.add_argument("--masking-scheme", choices=SCHEMES, default="span",
                   help="how the evaluation masks are drawn (default: span, SpanBERT's)")
    p.add_argument("--seed", type=int, default=1, help="seed of the evaluation masks (default: 1)")
    p.add_argument("--tokens-per-sample", type=int,
                   help="example length with [CLS] and [SEP] (default: the smallest any checkpoint was trained with)")
    p.add_argument("--batch-size", type=int, default=32, help="blocks per forward pass (default: 32)")
    p.add_argument("--json", metavar="OUT", help="write every count and figure as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="plot accuracy by span length, one line per checkpoint")
    return p


def run(argv=None):
    args = _parser().parse_args(argv)
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, got {args.batch_size}")
    start = time.monotonic()
    split = MaskedSplit(args.data, args.masking_scheme, args.seed)
    models = []
    for argument in args.checkpoints:
        models.append(load_model(argument, split.dictionary, split.dict_path))
        _say(f"loaded {argument} ({_describe(models[-1])})")
    tokens_per_sample = args.tokens_per_sample or min(m.tokens_per_sample for m in models)
    split.load(args.split, tokens_per_sample)
    for m in models:
        split.task.check_model_positions(m.model)
    record = evaluate(models, split, args, tokens_per_sample, start)
    sys.stdout.write(markdown(record))
    written = ["tables on stdout"]
    if args.json:
        write_json(record, args.json)
        written.append(f"JSON {args.json}")
    if args.plot:
        plot_accuracy(record, args.plot)
        written.append(f"plot {args.plot}")
    total = record["checkpoints"][0]["rows"][-1]
    _say(f"evaluated {len(models)} checkpoint(s) on {len(split):,} blocks of {args.data} {args.split!r} "
         f"({total['spans']:,} masked spans, {args.masking_scheme} masking, seed {args.seed}, "
         f"{tokens_per_sample} tokens per sample) in {time.monotonic() - start:.0f}s; {', '.join(written)}")


def evaluate(models, split, args, tokens_per_sample, start):
    """Every model on every batch of the split, masked once; -> the JSON record."""
    scores = [SpanLengthScores() for _ in models]
    digest = hashlib.sha1()
    done, last_report = 0, time.monotonic()
    for batch in split.batches(args.batch_size, digest):
        for model, score in zip(models, scores):
            score.add_batch(model, batch, split.pad)
        done += batch.sample["nsentences"]
        if time.monotonic() - last_report >= PROGRESS_EVERY_S:
            last_report = time.monotonic()
            _say(f"{done:,}/{len(split):,} blocks ({100 * done / len(split):.0f}%), "
                 f"{last_report - start:.0f}s")
    return {
        "data": str(args.data),
        "split": args.split,
        "masking": {"scheme": args.masking_scheme, "seed": args.seed, "tokens_per_sample": tokens_per_sample,
                    "blocks": len(split), "fingerprint": digest.hexdigest()},
        "checkpoints": [
            {"name": m.name, "checkpoint": m.checkpoint, "mlm": m.mlm, "sbo": m.sbo, "notes": m.notes,
             "rows": score.rows(m.mlm, m.sbo)}
            for m, score in zip(models, scores)
        ],
    }


def _describe(model):
    cfg = model.model.cfg
    heads = [name for name, on in (("MLM", model.mlm), ("SBO", model.sbo)) if on]
    return (f"{cfg.encoder_layers} layers, hidden {cfg.encoder_embed_dim}, trained on "
            f"{model.tokens_per_sample}-token examples; heads with figures: {', '.join(heads) or 'none'}")


def _say(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def main(argv=None):
    sys.exit(run_cli(PROG, run, argv))


if __name__ == "__main__":
    main()
