"""Data pipeline throughput: span_bert's task iterator vs fairseq's masked_lm on the same binaries.

Both sides go through `task.load_dataset` and `task.get_batch_iterator(...).next_epoch_itr()`,
exactly as fairseq-train does, and are read in chunks of `--chunk` batches, alternating sides
after a warm-up chunk; epochs roll over as in training. span_bert: document blocks, span
masking, SBO targets, collation. masked_lm: fairseq's TokenBlockDataset (`--sample-break-mode
complete_doc`, the closest to span_bert's within-document blocks), MaskTokensDataset, collation.
Same binaries, tokens per sample and batch size; `--num-workers 0` (the main process) unless set.

    python benchmarks/bench_data_pipeline.py --batch 8 --rounds 10
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

SIDES = ("span_bert", "masked_lm")


def setup_task(argv):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(parser, input_args=argv))
    return tasks.setup_task(cfg.task)


def task_argv(side, data_dir, seq_len, break_mode):
    common = [str(data_dir), "--tokens-per-sample", str(seq_len), "--seed", "1"]
    if side == "span_bert":
        return common + ["--user-dir", benchlib.USER_DIR, "--task", "span_bert", "--arch", "spanbert_tiny",
                         "--criterion", "span_bert"]
    return common + ["--task", "masked_lm", "--arch", "roberta_base", "--criterion", "masked_lm",
                     "--sample-break-mode", break_mode]


class BatchStream:
    """Endless batches from one task's epoch iterator, epochs rolling over as in fairseq-train."""

    def __init__(self, side, args):
        start = time.perf_counter()
        self.task = setup_task(task_argv(side, args.data_dir, args.seq_len, args.break_mode))
        self.task.load_dataset("train", epoch=1)
        self.epoch_itr = self.task.get_batch_iterator(
            dataset=self.task.dataset("train"), max_sentences=args.batch, max_positions=args.seq_len,
            ignore_invalid_inputs=True, seed=1, num_workers=args.num_workers, epoch=1,
        )
        self.batches_per_epoch = len(self.epoch_itr)
        self._itr = self.epoch_itr.next_epoch_itr(shuffle=True)
        self.tokens = 0
        self.setup_seconds = time.perf_counter() - start

    def take(self, count):
        for _ in range(count):
            batch = next(self._itr, None)
            if batch is None:
                self._itr = self.epoch_itr.next_epoch_itr(shuffle=True)
                batch = next(self._itr)
            self.tokens += batch["net_input"]["src_tokens"].numel()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="sequences per batch (--batch-size)")
    parser.add_argument("--seq-len", type=int, default=512, help="--tokens-per-sample")
    parser.add_argument("--chunk", type=int, default=20, help="batches per timed chunk")
    parser.add_argument("--rounds", type=int, default=10, help="timed chunks per side, alternating")
    parser.add_argument("--num-workers", type=int, default=0, help="fairseq --num-workers (0: main process)")
    parser.add_argument("--break-mode", default="complete_doc", help="masked_lm --sample-break-mode")
    benchlib.add_data_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    args.data_dir = benchlib.prepare_data(args, "bench_data_pipeline_")
    print(benchlib.machine_line())
    print(benchlib.versions_line())
    streams = {side: BatchStream(side, args) for side in SIDES}
    times = benchlib.interleaved_times({side: (lambda s=s: s.take(args.chunk)) for side, s in streams.items()},
                                       rounds=args.rounds, warmup=1)
    report(streams, times, args)


def report(streams, times, args):
    sb_rate = args.chunk / benchlib.median(times["span_bert"])
    rows = []
    for side, stream in streams.items():
        rate = args.chunk / benchlib.median(times[side])
        rows.append([side, stream.batches_per_epoch, f"{args.batch} x {args.seq_len}", f"{stream.setup_seconds:.2f}",
                     f"{rate:.1f}", f"{benchlib.spread(times[side]):.2f}", f"{rate * args.batch:.0f}",
                     f"{sb_rate / rate:.2f}"])
    benchlib.print_table(["side", "batches/epoch", "batch", "setup s", "batches/s (median)", "IQR/median",
                          "sequences/s", "span_bert / side"], rows)
    ml_rate = args.chunk / benchlib.median(times["masked_lm"])
    print(f"bench_data_pipeline: {args.rounds} alternating chunks of {args.chunk} batches, "
          f"num_workers {args.num_workers}, data {args.data_dir}: span_bert {sb_rate:.1f} batches/s vs masked_lm "
          f"{ml_rate:.1f} = x{sb_rate / ml_rate:.2f} (table above, stdout)")


if __name__ == "__main__":
    benchlib.quiet()
    main()
