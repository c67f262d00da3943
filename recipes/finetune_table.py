"""The table of a fine-tuning comparison: EM / F1 per starting point over seeds, with their spread.

    python recipes/finetune_table.py RUNS_DIR [START ...]

RUNS_DIR/START/seedN/eval.json (what finetune_squad.sh writes: the checkpoint best on dev), its
train.log (the last validation's F1: the last epoch's checkpoint, chosen by nobody) and wall_s (the
run's seconds); STARTs default to RUNS_DIR's directories in name order. Markdown on stdout.
"""

import json
import os
import re
import statistics
import sys

from spanbert_text.errors import UserInputError, run_cli


def runs_of(start_dir):
    """[(seed name, eval.json record, wall seconds or None)] of one starting point."""
    runs = []
    for name in sorted(os.listdir(start_dir)):
        path = os.path.join(start_dir, name, "eval.json")
        if name.startswith("seed") and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
            record["last_f1"] = _last_valid_f1(os.path.join(start_dir, name, "train.log"))
            runs.append((name, record, _wall_seconds(os.path.join(start_dir, name, "wall_s"))))
    return runs


def _last_valid_f1(path):
    """F1 of the last `valid` line fairseq-train logged (--log-format simple or json), None if none."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        found = re.findall(r"\| valid \|.*?(?:\| f1 |\"valid_f1\": \")([0-9.]+)", f.read())
    return float(found[-1]) if found else None


def _wall_seconds(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return float(f.read())


def spread(values):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {std:.2f} ({min(values):.2f}-{max(values):.2f})"


def table(runs_dir, starts):
    lines = [
        "| start | seeds | EM: mean ± std (min-max) | F1: mean ± std (min-max) | EM per seed | F1 per seed "
        "| F1 of the last epoch, mean (per seed) | wall s per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for start in starts:
        runs = runs_of(os.path.join(runs_dir, start))
        if not runs:
            raise UserInputError(f"{runs_dir}/{start}: no seedN/eval.json; run the fine-tuning first")
        em = [r["exact_match"] for _, r, _ in runs]
        f1 = [r["f1"] for _, r, _ in runs]
        walls = [w for _, _, w in runs if w is not None]
        wall = f"{statistics.fmean(walls):.0f} ({min(walls):.0f}-{max(walls):.0f})" if walls else "-"
        last = [r["last_f1"] for _, r, _ in runs if r["last_f1"] is not None]
        last_cell = f"{statistics.fmean(last):.2f} ({' / '.join(f'{v:.2f}' for v in last)})" if last else "-"
        lines.append(
            f"| {start} | {len(runs)} | {spread(em)} | {spread(f1)} | {' / '.join(f'{v:.2f}' for v in em)} | "
            f"{' / '.join(f'{v:.2f}' for v in f1)} | {last_cell} | {wall} |"
        )
    return "\n".join(lines)


def main(argv):
    if not argv:
        raise UserInputError("usage: finetune_table.py RUNS_DIR [START ...]")
    runs_dir, starts = argv[0], argv[1:]
    if not os.path.isdir(runs_dir):
        raise UserInputError(f"{runs_dir}: no such directory")
    starts = starts or sorted(d for d in os.listdir(runs_dir) if os.path.isdir(os.path.join(runs_dir, d)))
    print(table(runs_dir, starts))


if __name__ == "__main__":
    sys.exit(run_cli("finetune_table.py", main, sys.argv[1:]))
