"""Training cost calculator: FLOPs per update and GPU-days to a number of updates.

FLOPs of one update (forward + backward = 3 x forward; a multiply-add counts as 2 FLOPs):

    6 * N * tokens                                  encoder weight matmuls
  + 12 * L * T * H * tokens                         attention scores and weighted values (QK^T, AV)
  + 6 * (H*H + H*V) * masked                        MLM head, on masked positions only
  + 6 * ((2H + P)*H + H*H + H*V) * sbo_targets      SBO head, on SBO targets only

N is the encoder's non-embedding weight count, L layers, H hidden, F FFN width, T sequence
length, V vocabulary, P the SBO position-embedding width (200), tokens = batch * T. Embedding
lookups, LayerNorm, softmax, GeLU and the optimizer are left out (well under 1% at these sizes).
`masked` = batch * ceil(0.15 * (T - 2)); `sbo_targets` is at most `masked` (spans touching a block
edge have no SBO target, long spans keep their first 15 tokens); the table uses the upper bound.

    python benchmarks/cost.py --mfu 0.4 --peak-tflops 312
"""

import argparse
import math
from dataclasses import dataclass

BERT_CASED_VOCAB = 28996
SBO_POSITION_DIM = 200
PAPER_UPDATES = 2_400_000
PAPER_BATCH = 256
PAPER_SEQ_LEN = 512
MASK_RATE = 0.15


@dataclass(frozen=True)
class Size:
    name: str
    layers: int
    hidden: int
    ffn: int
    heads: int


SIZES = {
    "spanbert_base": Size("spanbert_base", 12, 768, 3072, 12),
    "spanbert_large": Size("spanbert_large", 24, 1024, 4096, 16),
}


def encoder_matmul_params(size):
    """Weights that multiply every token: Q, K, V, output, and the two FFN matrices, per layer."""
    per_layer = 4 * size.hidden * size.hidden + 2 * size.hidden * size.ffn
    return size.layers * per_layer


def masked_per_sequence(seq_len):
    """The span masker's exact budget: ceil(15%) of the block, the block being T minus [CLS]/[SEP]."""
    return math.ceil(MASK_RATE * (seq_len - 2))


def encoder_flops(size, batch, seq_len):
    tokens = batch * seq_len
    matmuls = 6 * encoder_matmul_params(size) * tokens
    attention = 12 * size.layers * seq_len * size.hidden * tokens
    return matmuls + attention


def mlm_head_flops(size, predicted, vocab):
    return 6 * (size.hidden * size.hidden + size.hidden * vocab) * predicted


def sbo_head_flops(size, sbo_targets, vocab, position_dim=SBO_POSITION_DIM):
    hidden = size.hidden
    per_target = (2 * hidden + position_dim) * hidden + hidden * hidden + hidden * vocab
    return 6 * per_target * sbo_targets


def spanbert_update_flops(size, batch, seq_len, vocab, masked=None, sbo_targets=None):
    """FLOPs of one SpanBERT update; masked/sbo_targets default to the budget's upper bound."""
    masked = batch * masked_per_sequence(seq_len) if masked is None else masked
    sbo_targets = masked if sbo_targets is None else sbo_targets
    return (
        encoder_flops(size, batch, seq_len)
        + mlm_head_flops(size, masked, vocab)
        + sbo_head_flops(size, sbo_targets, vocab)
    )


def gpu_days(total_flops, peak_tflops, mfu):
    return total_flops / (peak_tflops * 1e12 * mfu) / 86400


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=PAPER_BATCH, help="sequences per update (paper: 256)")
    parser.add_argument("--seq-len", type=int, default=PAPER_SEQ_LEN, help="tokens per sequence (paper: 512)")
    parser.add_argument("--updates", type=float, default=PAPER_UPDATES, help="updates (paper: 2.4M)")
    parser.add_argument("--vocab", type=int, default=BERT_CASED_VOCAB, help="vocabulary (BERT cased: 28996)")
    parser.add_argument("--peak-tflops", type=float, default=312.0,
                        help="GPU dense fp16/bf16 peak (A100 312, H100 SXM 989, V100 125)")
    parser.add_argument("--mfu", type=float, default=0.4, help="model-FLOPs utilisation to assume")
    parser.add_argument("--paper-gpus", type=int, default=32, help="the authors' run: 32 V100s ...")
    parser.add_argument("--paper-days", type=float, default=15.0, help="... for 15 days")
    parser.add_argument("--paper-peak-tflops", type=float, default=125.0, help="V100 fp16 tensor peak")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    tokens = args.batch * args.seq_len
    print(f"batch {args.batch} x {args.seq_len} = {tokens} tokens/update, {args.updates:,.0f} updates, "
          f"vocab {args.vocab}, masked/seq {masked_per_sequence(args.seq_len)}, "
          f"SBO targets = masked (upper bound)")
    print("| model | N (matmul params) | TFLOP/update | of which attention | of which heads "
          f"| total EFLOP | GPU-days @ {args.peak_tflops:g} TFLOPS, MFU {args.mfu:g} "
          f"| authors' run implies MFU ({args.paper_gpus} GPUs x {args.paper_days:g} d @ {args.paper_peak_tflops:g}) |")
    print("|---|---|---|---|---|---|---|---|")
    summary = []
    for size in SIZES.values():
        per_update = spanbert_update_flops(size, args.batch, args.seq_len, args.vocab)
        attention = 12 * size.layers * args.seq_len * size.hidden * tokens
        heads = per_update - encoder_flops(size, args.batch, args.seq_len)
        total = per_update * args.updates
        days = gpu_days(total, args.peak_tflops, args.mfu)
        paper_seconds = args.paper_gpus * args.paper_days * 86400
        implied_mfu = total / paper_seconds / (args.paper_peak_tflops * 1e12)
        implied = f"{implied_mfu:.1%}" if size.name == "spanbert_large" else "n/a (the run was large)"
        print(f"| {size.name} | {encoder_matmul_params(size) / 1e6:.1f}M | {per_update / 1e12:.1f} "
              f"| {attention / per_update:.1%} | {heads / per_update:.1%} | {total / 1e18:.0f} "
              f"| {days:,.0f} | {implied} |")
        summary.append(f"{size.name} {days:,.0f} GPU-days")
    print(f"cost: {', '.join(summary)} to {args.updates:,.0f} updates at MFU {args.mfu:g} "
          f"on a {args.peak_tflops:g}-TFLOPS GPU (printed to stdout)")


if __name__ == "__main__":
    main()
