"""CPU dropout and attention, forward + backward: the plugin's masks vs aten's, one run, interleaved.

Sides, on the same tensors:
  dropout      spanbert_fairseq.models.dropout.dropout vs F.dropout, on one sublayer's output
               (B x T x C) and on one layer's attention weights (B x heads x T x T)
  attention    dropout.attention vs F.scaled_dot_product_attention with the same dropout_p,
               and SDPA without dropout (its flash kernel) as the floor

    python benchmarks/bench_dropout.py --batch 2 --rounds 20
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402


def sides(args):
    import torch
    import torch.nn.functional as F

    from spanbert_fairseq.models.dropout import attention, dropout

    torch.manual_seed(0)
    p, heads, head_dim = args.p, args.hidden // 64, 64
    hidden = torch.randn(args.batch, args.seq_len, args.hidden, requires_grad=True)
    weights = torch.randn(args.batch, heads, args.seq_len, args.seq_len, requires_grad=True)
    q, k, v = (torch.randn(args.batch, heads, args.seq_len, head_dim, requires_grad=True) for _ in range(3))

    def step(fn, *inputs):
        def run():
            out = fn(*inputs)
            out.backward(torch.ones_like(out))
        return run

    return {
        "hidden": {"plugin": step(lambda x: dropout(x, p, True), hidden),
                   "aten": step(lambda x: F.dropout(x, p, True), hidden)},
        "weights": {"plugin": step(lambda x: dropout(x, p, True), weights),
                    "aten": step(lambda x: F.dropout(x, p, True), weights)},
        "attention": {"plugin": step(lambda *t: attention(*t, None, p), q, k, v),
                      "aten": step(lambda *t: F.scaled_dot_product_attention(*t, dropout_p=p), q, k, v),
                      "aten, no dropout": step(lambda *t: F.scaled_dot_product_attention(*t), q, k, v)}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=768, help="width; heads = width / 64")
    parser.add_argument("--p", type=float, default=0.1, help="dropout probability")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(benchlib.machine_line())
    rows, summary = [], []
    for case, case_sides in sides(args).items():
        times = benchlib.interleaved_times(case_sides, args.rounds, warmup=2)
        plugin = times["plugin"]
        for name, side_times in times.items():
            ratio, low, high = benchlib.paired_ratio(plugin, side_times)
            rows.append([case, name, f"{benchlib.median(side_times) * 1e3:.2f}",
                         f"{benchlib.spread(side_times):.2f}", f"{ratio:.3f} ({low:.3f}-{high:.3f})"])
        ratio = benchlib.paired_ratio(plugin, times["aten"])[0]
        summary.append(f"{case} x{ratio:.2f}")
    benchlib.print_table(["case", "side", "fwd+bwd ms (median)", "IQR/median", "plugin/side, paired (95% CI)"], rows)
    print(f"bench_dropout: {args.rounds} interleaved rounds, {args.batch} x {args.seq_len}, width {args.hidden}, "
          f"p {args.p}; plugin/aten time: {', '.join(summary)} (table above, stdout)")


if __name__ == "__main__":
    main()
