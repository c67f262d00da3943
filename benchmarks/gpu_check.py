"""The GPU check's Python side (benchmarks/gpu.sh runs each step in its own bounded process).

    python benchmarks/gpu_check.py matmul ROW.json                   the card's own bf16 matmul rate
    python benchmarks/gpu_check.py train ROW.json -- ARGS            fairseq-train ARGS, probed
    python benchmarks/gpu_check.py step ROW.json -- ARGS             bench_train_step.py ARGS, probed
    python benchmarks/gpu_check.py summary LOGS OUT                  the table, from LOGS/rows.tsv

Each run writes ROW.json at its end (also when it fails): peak memory, the dtypes nn.Linear
outputs had in the first forward (so a run whose GEMMs fell back to fp32 shows it), and for the
train step each side's first loss. `summary` turns the logs into one markdown table, one row per
check, each with a status saying why a row failed; it also writes summary.json.
"""

import argparse
import json
import math
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cost  # noqa: E402

BERT_VOCAB_SIZE = 30522
ROW_ORDER = ("fp16", "amp", "bf16", "compile", "step_fp16", "step_bf16")  # gpu.sh's rows, as the table lists them
PROBED_LINEAR_CALLS = 32  # enough for every kind of Linear in the first forward of one layer and the heads


# ---------------------------------------------------------------------------- probes
class LinearDtypeProbe:
    """Counts the output dtypes of the first nn.Linear calls anywhere in the process, then removes
    itself (a global hook left in place would slow every module call it does not need to see)."""

    def __init__(self, calls=PROBED_LINEAR_CALLS):
        import torch

        self.counts, self.left = {}, calls
        self.handle = torch.nn.modules.module.register_module_forward_hook(self.hook)

    def hook(self, module, inputs, output):
        import torch

        if self.left <= 0 or not isinstance(module, torch.nn.Linear) or not torch.is_tensor(output):
            return
        name = str(output.dtype).replace("torch.", "")
        self.counts[name] = self.counts.get(name, 0) + 1
        self.left -= 1
        if self.left == 0:
            self.remove()

    def remove(self):
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def peak_memory_bytes():
    """CUDA: the caching allocator's high-water mark; CPU (DRY_CPU): the process's peak RSS."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated()
    import benchlib

    return benchlib.rss_peak_bytes()


def write_json(path, record):
    Path(path).write_text(json.dumps(record, indent=1) + "\n")


# ---------------------------------------------------------------------------- matmul
def matmul_main(json_path):
    """bf16 n x n x n products: 3 warm-ups, then 10 timed; 2n^3 FLOPs each (n 8192 on CUDA)."""
    import torch

    cuda = torch.cuda.is_available()
    device, n, reps = ("cuda", 8192, 10) if cuda else ("cpu", 512, 3)
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync()
    seconds = (time.perf_counter() - start) / reps
    name = torch.cuda.get_device_name(0) if cuda else "CPU (DRY_CPU)"
    record = {"device": name, "n": n, "tflops": 2 * n**3 / seconds / 1e12, **versions()}
    write_json(json_path, record)
    print(f"gpu_check matmul: {name}, bf16 {n}^3: {record['tflops']:.3g} TFLOP/s; "
          + ", ".join(f"{k} {v}" for k, v in versions().items()))


def versions():
    """What ran, read from the installed metadata (importing fairseq here would cost seconds)."""
    import importlib.metadata as md
    import platform

    import torch

    found = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda}
    for name in ("ve-fairseq", "transformers", "numpy", "hydra-core", "omegaconf", "bitarray"):
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = None
    return found


# ---------------------------------------------------------------------------- fairseq-train
def train_main(json_path, argv):
    """fairseq-train `argv` in this process, its first forward's Linear dtypes probed (not under
    --compile: a hook seen while compiling and gone after would recompile the model)."""
    sys.argv = ["fairseq-train", *argv]  # before the plugin is imported: it installs fairseq-train's patches
    record = {"argv": argv, **model_shape(argv)}
    probe = None if "--compile" in argv else LinearDtypeProbe()
    start = time.perf_counter()
    try:
        from fairseq_cli.train import cli_main

        cli_main()
    finally:
        record.update(wall_s=time.perf_counter() - start, peak_memory_bytes=peak_memory_bytes(),
                      linear_dtypes=probe.counts if probe else None)
        write_json(json_path, record)


def model_shape(argv):
    """The encoder's dims and vocabulary as fairseq-train will build them (for the FLOPs)."""
    import bench_train_step

    args = bench_train_step.fairseq_args(argv)
    dims = {k: getattr(args, k) for k in ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
                                         "encoder_attention_heads")}
    dict_path = Path(str(args.data).split(":")[0]) / "dict.txt"
    vocab = sum(1 for _ in dict_path.open(encoding="utf-8")) if dict_path.exists() else BERT_VOCAB_SIZE
    return {"dims": dims, "vocab": vocab, "tokens_per_sample": args.tokens_per_sample}


# ---------------------------------------------------------------------------- train step
def step_main(json_path, argv):
    """bench_train_step.main(argv), each side's first step probed: Linear dtypes and the loss."""
    import bench_train_step

    record = {"argv": argv, "sides": {}}
    original = getattr(bench_train_step, "first_step_seconds", None)
    if original is None:  # the benchmark changed shape: time it unprobed rather than not at all
        return bench_train_step.main(argv)

    def probed_first_step(side, sync):
        probe, losses, loss_fn = LinearDtypeProbe(), [], side.loss_fn
        side.loss_fn = lambda model: losses.append(loss_fn(model)) or losses[-1]
        try:
            return original(side, sync)
        finally:
            probe.remove()
            side.loss_fn = loss_fn
            record["sides"][side.name] = {"linear_dtypes": probe.counts,
                                          "first_loss": float(losses[0].detach()) if losses else None}

    bench_train_step.first_step_seconds = probed_first_step
    start = time.perf_counter()
    try:
        bench_train_step.main(argv)
    finally:
        bench_train_step.first_step_seconds = original
        record["wall_s"] = time.perf_counter() - start
        write_json(json_path, record)


# ---------------------------------------------------------------------------- summary
def train_inner_records(log_text):
    """fairseq's --log-format json lines of the interval stats ("INFO:train_inner:{...}" through
    logging, "| train_inner | {...}" where fairseq prints them itself)."""
    return [json.loads(m.group(1)) for m in re.finditer(r"train_inner\W*(\{.*\})", log_text)]


def epoch_updates(log_text):
    """The update count fairseq reports at the end of the run (its epoch summary), or None."""
    found = re.findall(r'"train_num_updates": "?(\d+)', log_text)
    return int(found[-1]) if found else None


def markdown_tables(log_text):
    """Every markdown table in the text, as lists of {header: cell}."""
    tables, header = [], None
    for line in log_text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            header = None
        elif header is None:
            header = cells
            tables.append([])
        elif not all(set(c) <= {"-"} for c in cells):
            tables[-1].append(dict(zip(header, cells)))
    return tables


def last_error_line(log_text):
    """The line that says why a run stopped: the last error-looking line of its log."""
    for line in reversed(log_text.splitlines()):
        if re.search(r"(Error|error:|Exception|Traceback|Killed|CUDA out of memory)", line):
            return line.strip()[:200]
    return last_line(log_text)


def last_line(log_text):
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else "no output"


def train_row(spec, log_text, record, peak_tflops):
    """The figures of one fairseq-train run: tokens/s, MFU, peak memory, losses."""
    inner = train_inner_records(log_text)
    if not inner:
        return {}
    steady = inner[2:] or inner  # the first intervals hold CUDA start-up and, under --compile, compilation
    wps = statistics.median(float(r["wps"]) for r in steady)
    losses = [float(r["loss"]) for r in inner]
    updates = max(int(inner[-1]["num_updates"]), epoch_updates(log_text) or 0)
    row = {"updates": updates, "tokens_per_s": wps, "losses": losses,
           "finite": all(math.isfinite(x) for x in losses),
           "first_interval_s": float(inner[0]["wpb"]) / float(inner[0]["wps"]) * int(inner[0]["num_updates"])}
    if record:
        row["peak_memory_gib"] = record["peak_memory_bytes"] / 2**30
        row["linear_dtypes"] = record.get("linear_dtypes")
        if peak_tflops:
            flops = statistics.median(update_flops(record, float(r["bsz"])) * float(r["wps"]) / float(r["wpb"])
                                      for r in steady)
            row["mfu"] = flops / (peak_tflops * 1e12)
    return row


def update_flops(record, batch):
    dims, seq_len = record["dims"], record["tokens_per_sample"]
    size = cost.Size("run", dims["encoder_layers"], dims["encoder_embed_dim"], dims["encoder_ffn_embed_dim"],
                     dims["encoder_attention_heads"])
    return cost.spanbert_update_flops(size, 1, seq_len, record["vocab"]) * batch


def step_row(spec, log_text, record):
    """span_bert against roberta from bench_train_step's table (read by its column names)."""
    rows = {r.get("side"): r for table in markdown_tables(log_text) for r in table if "side" in r}
    if "span_bert" not in rows or "roberta" not in rows:
        return {}
    sb, rb = rows["span_bert"], rows["roberta"]
    row = {"tokens_per_s": number(sb.get("tokens/s")), "roberta_tokens_per_s": number(rb.get("tokens/s")),
           "step_ms": number(sb.get("step ms (median)")), "roberta_step_ms": number(rb.get("step ms (median)")),
           "step_ratio": number(rb.get("step ratio sb/side")), "paired_ratio": rb.get("paired ratio (95% CI)"),
           "mem_ratio": number(rb.get("mem ratio sb/side")), "mfu": percent(sb.get("MFU")),
           "roberta_mfu": percent(rb.get("MFU"))}
    peak_mib = number(sb.get("peak MiB"))
    row["peak_memory_gib"] = peak_mib / 1024 if peak_mib is not None else None
    sides = (record or {}).get("sides", {})
    row["linear_dtypes"] = {name: side.get("linear_dtypes") for name, side in sides.items()}
    row["losses"] = [side.get("first_loss") for side in sides.values() if side.get("first_loss") is not None]
    row["finite"] = bool(row["losses"]) and all(math.isfinite(x) for x in row["losses"])
    return row


def number(cell):
    try:
        return float(str(cell).replace(",", ""))
    except ValueError:
        return None


def percent(cell):
    return number(str(cell).rstrip("%")) / 100 if cell and number(str(cell).rstrip("%")) is not None else None


def read_rows(logs):
    """rows.tsv, one line per check as gpu.sh ran or skipped it: name, kind, expected Linear output
    dtype, updates asked for, flags, exit status (or why it did not run), wall seconds, its limit."""
    rows = []
    for line in (Path(logs) / "rows.tsv").read_text().splitlines():
        name, kind, expect, target, flags, status, wall, limit = line.split("\t")
        rows.append({"name": name, "kind": kind, "expect": expect, "target": number(target), "flags": flags,
                     "status": status, "wall_s": number(wall), "limit_s": number(limit)})
    return rows


def summarise(logs):
    logs = Path(logs)
    matmul = json.loads((logs / "matmul.json").read_text()) if (logs / "matmul.json").exists() else {}
    peak = matmul.get("tflops")
    rows = []
    for spec in read_rows(logs):
        log_path, record_path = logs / f"{spec['name']}.log", logs / f"{spec['name']}.json"
        log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
        record = json.loads(record_path.read_text()) if record_path.exists() else None
        if spec["kind"] == "train":
            figures = train_row(spec, log_text, record, peak)
        elif spec["kind"] == "step":
            figures = step_row(spec, log_text, record)
        else:
            figures = {}
        rows.append({**spec, **figures, "verdict": verdict(spec, figures, log_text)})
    ran = {r["name"] for r in rows}
    rows += [{"name": name, "kind": "-", "expect": "-", "target": None, "flags": "-", "status": "not reached",
              "verdict": "not reached (the script stopped before this row)"} for name in ROW_ORDER if name not in ran]
    rows.sort(key=lambda r: ROW_ORDER.index(r["name"]) if r["name"] in ROW_ORDER else len(ROW_ORDER))
    add_comparisons(rows)
    return {"matmul": matmul, "rows": rows}


def verdict(spec, figures, log_text):
    """ok, or what went wrong, in words a reader of the table acts on."""
    status = spec["status"]
    if status.startswith("skipped") or status == "not selected":
        return status
    if status in ("124", "137"):
        progress = (f"{figures.get('updates', 0)} updates logged" if spec["kind"] == "train"
                    else f"last line: {last_line(log_text)}")
        return f"TIMED OUT after {spec['limit_s']:.0f} s (its limit); {progress}"
    if status != "0":
        return f"FAILED (exit {status}): {last_error_line(log_text)}"
    if not figures:
        return "FAILED: no figures in its log"
    if not figures.get("finite"):
        return "FAILED: a loss is not finite"
    if spec.get("target") and figures.get("updates", 0) < spec["target"]:
        return f"FAILED: stopped at update {figures['updates']} of {spec['target']:.0f}"
    wrong = wrong_dtypes(spec["expect"], figures.get("linear_dtypes"))
    return f"CHECK: {wrong}" if wrong else "ok"


def wrong_dtypes(expect, observed):
    """Which probed Linear outputs had another dtype than the precision asked for, or None."""
    if not expect or expect == "-" or not observed:
        return None
    per_side = observed if all(isinstance(v, dict) or v is None for v in observed.values()) else {"": observed}
    bad = [f"{side + ' ' if side else ''}GEMMs ran in {', '.join(sorted(set(d) - {expect}))}, not {expect}"
           for side, d in per_side.items() if d and set(d) - {expect}]
    return "; ".join(bad) or None


def add_comparisons(rows):
    """Each train row against the --fp16 row (and the compiled one against eager bf16)."""
    by_name = {r["name"]: r for r in rows}
    for row in rows:
        if not (row["verdict"] == "ok" or row["verdict"].startswith("CHECK")):
            continue  # a failed or cut-short run's figures are its warm-up
        if row["kind"] == "train" and row.get("tokens_per_s"):
            base = by_name.get("bf16" if row["name"] == "compile" else "fp16")
            if base is not None and base is not row and base.get("tokens_per_s"):
                row["comparison"] = f"x{row['tokens_per_s'] / base['tokens_per_s']:.2f} tokens/s of {base['flags']}"
        elif row["kind"] == "step" and row.get("step_ratio"):
            mem = f", memory x{row['mem_ratio']:.2f}" if row.get("mem_ratio") else ""
            row["comparison"] = (f"step time x{row['step_ratio']:.3f} of roberta (paired {row['paired_ratio']}; "
                                 f"roberta {row['roberta_step_ms']:.1f} ms, {row['roberta_tokens_per_s']:,.0f} "
                                 f"tokens/s){mem}")


HEADER = ["check", "flags", "status", "updates", "loss first -> last (all finite)", "tokens/s", "MFU",
          "peak GiB", "Linear output dtype", "comparison", "first interval s", "wall s"]


def table_lines(summary):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    for row in summary["rows"]:
        cells = [row["name"], row["flags"], row["verdict"], fmt(row.get("updates"), "{:.0f}"), losses_cell(row),
                 fmt(row.get("tokens_per_s"), "{:,.0f}"), fmt(row.get("mfu"), "{:.1%}"),
                 fmt(row.get("peak_memory_gib"), "{:.2f}"), dtypes_cell(row.get("linear_dtypes")),
                 row.get("comparison", "-"), fmt(row.get("first_interval_s"), "{:.1f}"),
                 fmt(row.get("wall_s"), "{:.0f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def fmt(value, spec):
    return spec.format(value) if value is not None else "-"


def losses_cell(row):
    losses = row.get("losses")
    if not losses:
        return "-"
    finite = "yes" if row.get("finite") else "NO"
    if row["kind"] == "step":
        return f"first step {', '.join(f'{x:.3f}' for x in losses)} ({finite})"
    return f"{losses[0]:.3f} -> {losses[-1]:.3f} ({finite}, {len(losses)} logged)"


def dtypes_cell(observed):
    if not observed:
        return "-"
    if all(isinstance(v, dict) or v is None for v in observed.values()):
        return "; ".join(f"{side} {dtypes_cell(d)}" for side, d in observed.items())
    return ", ".join(f"{dtype} x{count}" for dtype, count in sorted(observed.items()))


def summary_main(logs, out):
    summary = summarise(logs)
    matmul = summary["matmul"]
    head = (f"GPU check on {matmul.get('device', '?')}: bf16 matmul {matmul.get('n', '?')}^3 measured at "
            f"{matmul['tflops']:.3g} TFLOP/s (the MFU denominator); python {matmul.get('python')}, torch "
            f"{matmul.get('torch')}, CUDA {matmul.get('cuda')}, fairseq {matmul.get('ve-fairseq')}, transformers "
            f"{matmul.get('transformers')}" if matmul else "GPU check: no matmul measurement (MFU left out)")
    lines = [head, ""] + table_lines(summary)
    Path(out, "summary.md").write_text("\n".join(lines) + "\n")
    write_json(Path(out, "summary.json"), summary)
    print("\n".join(lines))
    chosen = [r for r in summary["rows"] if r["status"] != "not selected"]
    bad = [r["name"] for r in chosen if r["verdict"] != "ok"]
    print(f"gpu_check summary: {len(chosen) - len(bad)} of {len(chosen)} rows run ok"
          + (f", not ok: {', '.join(bad)}" if bad else "") + f" (table: {Path(out, 'summary.md')})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["matmul", "train", "step", "summary"])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if args.command == "matmul":
        return matmul_main(args.paths[0])
    if args.command == "train":
        return train_main(args.paths[0], rest)
    if args.command == "step":
        import benchlib

        benchlib.quiet()
        return step_main(args.paths[0], rest)
    return summary_main(*args.paths[:2])


if __name__ == "__main__":
    main()
