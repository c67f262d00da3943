"""How long the stop-time save of checkpoint_last.pt takes for an architecture: the figure that
SLURM's `--signal=USR1@N` lead and torchrun's SIGKILL grace must cover (docs/reliability.md).

Builds the architecture as fairseq-train does, then writes what a `--fp16` run's checkpoint holds
(fp16 parameters, Adam's two fp32 moments per parameter) through the plugin's atomic writer (temporary
file, fsync, rename, directory fsync) into --dir, as many times as --repeats asks; prints the size, each
write's seconds and the write rate.

    .venv/bin/python benchmarks/bench_checkpoint_save.py --arch spanbert_large --dir /path/on/the/save/disk
"""

import argparse
import os
import sys
import tempfile
import time

import benchlib
import torch
from bench_train_step import fairseq_side, import_plugin

# BERT cased (the authors' vocabulary): 28,996 entries, the specials at BERT's ids.
SPECIALS = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}


def write_dict(directory, size):
    tokens = [SPECIALS.get(i, f"piece{i}") for i in range(size)]
    with open(os.path.join(directory, "dict.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{token} 1\n" for token in tokens)


def fp16_checkpoint_state(model):
    """What fairseq's --fp16 checkpoint holds, by size: the fp16 model, Adam's fp32 exp_avg / exp_avg_sq."""
    params = {name: p.detach().half() for name, p in model.state_dict().items()}
    moments = {i: {"exp_avg": torch.zeros(p.shape), "exp_avg_sq": torch.zeros(p.shape), "step": 1}
               for i, p in enumerate(model.parameters())}
    return {"model": params, "last_optimizer_state": {"state": moments, "param_groups": []}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="spanbert_large")
    parser.add_argument("--vocab-size", type=int, default=28996)
    parser.add_argument("--dir", help="where to write (default: a temporary directory on /tmp's disk)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    benchlib.quiet()
    import_plugin()
    from spanbert_fairseq.checkpoint_io import save_atomically

    with tempfile.TemporaryDirectory() as data, tempfile.TemporaryDirectory(dir=args.dir) as out:
        write_dict(data, args.vocab_size)
        _, model, _ = fairseq_side([data, "--user-dir", benchlib.USER_DIR, "--task", "span_bert",
                                    "--criterion", "span_bert", "--arch", args.arch, "--cpu"])
        state = fp16_checkpoint_state(model)
        del model
        path = os.path.join(out, "checkpoint_last.pt")
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            save_atomically(state, path)
            seconds.append(time.perf_counter() - start)
            size = os.path.getsize(path)
        rate = size / min(seconds) / 1e9
        print(f"{args.arch} --fp16 checkpoint: {size / 1e9:.2f} GB; save (write, fsync, rename) "
              f"{', '.join(f'{s:.1f}' for s in seconds)} s; {rate:.2f} GB/s to {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
