"""Data-parallel scaling on this machine: tokens/s of fairseq-train with one and with two processes.

Each run is `torchrun --standalone --nproc_per_node N fairseq-train ... --distributed-backend gloo
--ddp-backend legacy_ddp --cpu` on spanbert_tiny with the same per-process batch (weak scaling, as
one adds GPUs), OMP threads = cores / N so both runs use the whole machine. tokens/s is fairseq's
own `wps` (summed over workers), median over the updates after `--skip` warm-up updates; runs
alternate between N=1 and N=2, `--rounds` each, and the median over runs is reported.

    python benchmarks/bench_scaling.py --updates 20 --rounds 2
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

PROCESS_COUNTS = (1, 2)
TRAIN_INNER = re.compile(r"\| train_inner \| (\{.*\})\s*$")


def train_cmd(nproc, args, save_dir):
    # --no-save still makes --save-dir (fairseq-train checks that it can write there): a scratch one,
    # not ./checkpoints wherever the benchmark was started.
    return [
        str(benchlib.VENV_BIN / "torchrun"), "--standalone", "--nproc_per_node", str(nproc),
        str(benchlib.VENV_BIN / "fairseq-train"), str(args.data_dir),
        "--user-dir", benchlib.USER_DIR, "--task", "span_bert", "--criterion", "span_bert",
        "--arch", args.arch, "--tokens-per-sample", str(args.seq_len), "--batch-size", str(args.batch),
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.999)", "--weight-decay", "0.01", "--lr", "1e-4",
        "--max-update", str(args.updates), "--log-format", "json", "--log-interval", "1",
        "--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp", "--cpu", "--num-workers", "0",
        "--no-save", "--save-dir", str(save_dir), "--disable-validation", "--seed", "1",
    ]


def run_once(nproc, args):
    """One training run; returns (median wps after warm-up, wall seconds, number of logged updates)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // nproc)))
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as save_dir:
        start = time.perf_counter()
        out = subprocess.run(train_cmd(nproc, args, save_dir), env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"fairseq-train with {nproc} processes failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    wps = [float(json.loads(m.group(1))["wps"]) for line in (out.stdout + out.stderr).splitlines()
           if (m := TRAIN_INNER.search(line))]
    if len(wps) <= args.skip:
        raise RuntimeError(f"only {len(wps)} train_inner lines with {nproc} processes; raise --updates")
    return benchlib.median(wps[args.skip:]), wall, len(wps)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="spanbert_tiny")
    parser.add_argument("--batch", type=int, default=8, help="sequences per process per update")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--updates", type=int, default=20, help="updates per run")
    parser.add_argument("--skip", type=int, default=3, help="first updates left out of the median")
    parser.add_argument("--rounds", type=int, default=2, help="runs per process count, alternating")
    benchlib.add_data_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    args.data_dir = benchlib.prepare_data(args, "bench_scaling_")
    print(benchlib.machine_line())
    results = {n: [] for n in PROCESS_COUNTS}
    for r in range(args.rounds):
        for nproc in (PROCESS_COUNTS if r % 2 == 0 else PROCESS_COUNTS[::-1]):
            results[nproc].append(run_once(nproc, args))
    report(results, args)


def report(results, args):
    base = benchlib.median([wps for wps, _, _ in results[1]])
    rows = []
    for nproc, runs in results.items():
        wps = benchlib.median([w for w, _, _ in runs])
        rows.append([nproc, max(1, (os.cpu_count() or 1) // nproc), f"{args.batch * nproc} x {args.seq_len}",
                     f"{wps:,.0f}", " ".join(f"{w:,.0f}" for w, _, _ in runs),
                     " ".join(f"{wall:.0f}" for _, wall, _ in runs), f"{wps / base:.2f}", f"{wps / base / nproc:.0%}"])
    benchlib.print_table(["processes", "threads each", "global batch", "tokens/s (median)", "runs tokens/s",
                          "runs wall s", "speed-up", "efficiency"], rows)
    two = benchlib.median([w for w, _, _ in results[2]])
    print(f"bench_scaling: {args.arch}, {args.batch} x {args.seq_len} per process, {args.updates} updates x "
          f"{args.rounds} runs each: 1 process {base:,.0f} tokens/s, 2 gloo processes {two:,.0f} tokens/s "
          f"(x{two / base:.2f}) (table above, stdout)")


if __name__ == "__main__":
    benchlib.quiet()
    main()
