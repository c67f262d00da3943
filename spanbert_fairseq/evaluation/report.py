"""spanbert-eval's outputs: the markdown tables, the JSON record and the accuracy plot."""

import itertools
import json

from spanbert_text.files import save_figure, write_text

from .scores import MAX_SPAN_WORDS

COLOURS = [f"C{i}" for i in range(10)]  # matplotlib's default cycle, by name

# (JSON key, column title, format); a head's columns are left out where it has no figures.
SPAN_COLUMNS = [("span_words", "span words", "{}"), ("spans", "spans", "{:,}")]
HEAD_COLUMNS = {
    head: [
        (f"{head}_tokens", f"{title} tokens", "{:,}"),
        (f"{head}_acc", f"{title} acc %", "{:.2f}"),
        (f"{head}_loss", f"{title} loss (bits)", "{:.3f}"),
        # Every span has MLM targets, so only the SBO head needs its own count of spans.
        *([(f"{head}_spans", f"{title} spans", "{:,}")] if head == "sbo" else []),
        (f"{head}_exact", f"{title} span exact %", "{:.2f}"),
    ]
    for head, title in (("mlm", "MLM"), ("sbo", "SBO"))
}
SUMMARY_COLUMNS = [
    ("mlm_acc", "MLM acc %", "{:.2f}"), ("mlm_loss", "MLM loss (bits)", "{:.3f}"),
    ("mlm_exact", "MLM span exact %", "{:.2f}"),
    ("sbo_acc", "SBO acc %", "{:.2f}"), ("sbo_loss", "SBO loss (bits)", "{:.3f}"),
    ("sbo_exact", "SBO span exact %", "{:.2f}"),
]


def markdown(record):
    """A summary table (one row per checkpoint, all spans) when there are several, then one table per
    checkpoint by span length."""
    masking = record["masking"]
    lines = [
        f"Evaluated on {record['data']} split {record['split']!r}: {masking['blocks']:,} blocks of at most "
        f"{masking['tokens_per_sample'] - 2} tokens, {masking['scheme']} masking with seed {masking['seed']} "
        f"(mask fingerprint {masking['fingerprint'][:12]}). Losses in bits per token; spans are merged "
        f"spans, their length in whole words.",
        "",
    ]
    if len(record["checkpoints"]) > 1:  # one checkpoint: its own table's last row says the same
        summaries = [{"checkpoint": c["name"], **c["rows"][-1]} for c in record["checkpoints"]]
        lines += _table([("checkpoint", "checkpoint", "{}")] + SUMMARY_COLUMNS, summaries) + [""]
    for checkpoint in record["checkpoints"]:
        columns = SPAN_COLUMNS + [c for head in ("mlm", "sbo") if checkpoint[head] for c in HEAD_COLUMNS[head]]
        lines += [f"### {checkpoint['name']}", ""]
        lines += [f"- {note}" for note in checkpoint["notes"]] + ([""] if checkpoint["notes"] else [])
        lines += _table(columns, checkpoint["rows"]) + [""]
    return "\n".join(lines)


def _table(columns, rows):
    lines = ["| " + " | ".join(title for _, title, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = [_cell(row.get(key), fmt) for key, _, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cell(value, fmt):
    return "–" if value is None else fmt.format(value)


def write_json(record, path):
    write_text(path, json.dumps(record, indent=1) + "\n")


def plot_accuracy(record, path):
    """MLM and SBO accuracy by span length (1..10 words), one line per checkpoint, side by side."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a training machine
    from matplotlib import pyplot as plt

    lengths = list(range(1, MAX_SPAN_WORDS + 1))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, head, title in ((axes[0], "mlm", "MLM head (whole context)"),
                              (axes[1], "sbo", "SBO head (span boundaries only)")):
        # One colour per checkpoint in both panels, whichever heads it has figures for.
        for checkpoint, colour in zip(record["checkpoints"], itertools.cycle(COLOURS)):
            if checkpoint[head]:
                accuracy = [row.get(f"{head}_acc") for row in checkpoint["rows"][:MAX_SPAN_WORDS]]
                axis.plot(lengths, [float("nan") if a is None else a for a in accuracy], marker="o",
                          color=colour, label=checkpoint["name"])
        axis.set_title(title)
        axis.set_xlabel("span length (words), with the number of spans")
        # The masks are shared, so the counts are every checkpoint's; long spans are few and noisy.
        spans = [row["spans"] for row in record["checkpoints"][0]["rows"][:MAX_SPAN_WORDS]]
        axis.set_xticks(lengths, [f"{n}\n({count:,})" for n, count in zip(lengths, spans)], fontsize="small")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("token accuracy (%)")
    axes[0].legend(fontsize="small")
    masking = record["masking"]
    figure.suptitle(f"{record['data']} {record['split']}: {masking['scheme']} masking, seed {masking['seed']}")
    figure.tight_layout()
    save_figure(figure, path)
    plt.close(figure)
