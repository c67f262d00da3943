"""Training curves from fairseq-train logs: loss and accuracy against updates, train and valid
(the curves of recipes/demo.sh and recipes/ablation.sh).

    python recipes/plot_training_curves.py OUT.png LOG [LOG ...] [--labels A B ...] [--heads mlm,sbo]

Reads the lines fairseq logs under `train_inner` and `valid`, in its `json` or `simple` log format.
One colour per (log, head); train is a line, valid a dashed line with markers. It imports neither
torch nor fairseq, so it starts in a second.
"""

import argparse
import json
import os
import re
import sys

from spanbert_text.errors import UserInputError, run_cli
from spanbert_text.files import save_figure

TAGS = ("train_inner", "valid")
HEADS = ("mlm", "sbo")
_LINE = re.compile(r"\| (train_inner|valid) \| (.*)$")
_SIMPLE_PAIR = re.compile(r"([a-z_][a-z0-9_]*)[= ]([-0-9.e]+)(?:,|$| \|)")


def read_log(path):
    """-> {tag: [record, ...]} with records {metric: float}, the tag's prefix (valid_) removed."""
    records = {tag: [] for tag in TAGS}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            match = _LINE.search(line.rstrip())
            if match:
                tag, body = match.groups()
                record = _parse_body(body, prefix=f"{tag}_")
                if "num_updates" in record:
                    records[tag].append(record)
    if not any(records.values()):
        raise UserInputError(f"{path}: no train_inner or valid lines with num_updates (is it a fairseq-train log?)")
    return records


def _parse_body(body, prefix):
    if body.startswith("{"):
        pairs = json.loads(body).items()
    else:  # simple format: "epoch 001:  50 / 295 loss=21.0, ..." or "... | loss 17.8 | mlm_loss 9.2 | ..."
        pairs = _SIMPLE_PAIR.findall(body)
    record = {}
    for key, value in pairs:
        try:
            record[key.removeprefix(prefix)] = float(value)
        except (TypeError, ValueError):
            continue
    return record


def plot_curves(logs, labels, heads, path):
    """Loss (bits) and accuracy (%) against updates for each log and head, side by side."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a training machine
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
    for records, label in zip(logs, labels):
        for head in heads:
            if any(f"{head}_loss" in r for r in records["train_inner"] + records["valid"]):
                _plot_head(axes, records, head, f"{label} {head.upper()}".strip(), next(colours))
    for axis, title in zip(axes, ("loss (bits per masked token)", "accuracy (%)")):
        axis.set_xlabel("updates")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize="small", ncol=1 + len(logs) // 4)
    figure.tight_layout()
    save_figure(figure, path)
    plt.close(figure)


def _plot_head(axes, records, head, name, colour):
    """One head of one log: loss on axes[0], accuracy on axes[1]; train a line, valid dashed with markers."""
    for axis, metric in zip(axes, ("loss", "acc")):
        key = f"{head}_{metric}"
        for tag, style in (("train_inner", dict(linestyle="-")),
                           ("valid", dict(linestyle="--", marker="o", markersize=3))):
            points = [(r["num_updates"], r[key]) for r in records[tag] if key in r]
            if points:
                axis.plot(*zip(*points), color=colour, label=f"{name} {tag.split('_')[0]}", **style)


def _parser():
    p = argparse.ArgumentParser(prog="plot_training_curves.py", description="Plot fairseq-train logs: loss and "
                                "accuracy against updates, train and valid, per head.")
    p.add_argument("out", help="the PNG to write")
    p.add_argument("logs", nargs="+", help="fairseq-train logs (json or simple format)")
    p.add_argument("--labels", nargs="+", help="one name per log (default: the log's directory name)")
    p.add_argument("--heads", default="mlm,sbo", help="comma-separated heads to plot (default: mlm,sbo)")
    return p


def run(argv=None):
    args = _parser().parse_args(argv)
    labels = args.labels or [os.path.basename(os.path.dirname(os.path.abspath(log))) for log in args.logs]
    if len(labels) != len(args.logs):
        raise UserInputError(f"--labels gives {len(labels)} names for {len(args.logs)} logs")
    heads = [h for h in args.heads.split(",") if h]
    if not heads or set(heads) - set(HEADS):
        raise UserInputError(f"--heads must name some of {', '.join(HEADS)}, got {args.heads!r}")
    logs = [read_log(log) for log in args.logs]
    plot_curves(logs, labels if len(logs) > 1 else [""], heads, args.out)
    print(f"plot_training_curves.py: {len(logs)} log(s) -> {args.out}")


def main(argv=None):
    sys.exit(run_cli("plot_training_curves.py", run, argv))


if __name__ == "__main__":
    main()
