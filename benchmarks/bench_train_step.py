"""Training step (forward, backward, AdamW step) time and peak memory: span_bert vs its baselines.

Sides, all at the same size, batch and sequence length, on the same token rows:
  span_bert  this project's model + criterion (MLM + SBO), batch from the span_bert task
  roberta    fairseq's own `roberta` model + `masked_lm` criterion (MLM only), same fairseq,
             same masked positions (the span_bert batch with ids mapped to fairseq's specials)
  hf_bert    transformers.BertForPreTraining (MLM + NSP; HF scores every position)
  span_bert_aten_dropout  (asked for by name only) span_bert with aten's CPU dropout, F.dropout and
             SDPA with dropout_p, in place of models/dropout.py's: that change measured alone
  span_bert_ckpt  (asked for by name only) span_bert with --checkpoint-activations: the encoder
             layers' activations recomputed in the backward (compare its peak memory and time)

Time: one process, every side warmed up, then one step per side per round, round-robin with a
rotating order; medians and ratios. Memory: a fresh child process per side. On CPU the peak is
the RSS high-water (VmHWM, reset after a warm-up step) minus the RSS before the model was built
(libraries already imported and torch's kernels warmed), with glibc told to unmap every freed
block over 64 KiB so RSS follows live tensors; on CUDA it is torch.cuda.max_memory_allocated.
Both count weights, gradients, AdamW state and activations.
"model FLOPs sb/side" is the work each side must do (benchmarks/cost.py's formula on the actual
masked and SBO counts; HF scores every position): a step ratio above 1 that matches it is the
extra SBO head, not overhead.

    python benchmarks/bench_train_step.py --sizes tiny,base-L2 --batch 8 --rounds 10
    python benchmarks/bench_train_step.py --device cuda --fp16 --sizes base --batch 32   # GPU
    python benchmarks/bench_train_step.py --compile --sizes base --batch 2 --sides span_bert,roberta
    python benchmarks/bench_train_step.py --sizes base --batch 4 --sides span_bert,span_bert_ckpt

--compile builds span_bert with its --compile flag (torch.compile of encoder and heads); the other
sides stay eager. The "first step s" column is each side's first step alone, which for a compiled
side includes compilation.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
import cost  # noqa: E402

SIDES = ("span_bert", "roberta", "hf_bert")
BY_NAME_SIDES = ("span_bert_aten_dropout", "span_bert_ckpt")
BERT_VOCAB_SIZE = 30522
GPU_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "V100": 125.0}


@dataclass(frozen=True)
class Dims:
    name: str
    layers: int
    hidden: int
    ffn: int
    heads: int

    def as_cost_size(self):
        return cost.Size(self.name, self.layers, self.hidden, self.ffn, self.heads)


# ---------------------------------------------------------------------------- sizes
def resolve_size(name, data_dir):
    """tiny = spanbert_tiny's own dims; base-L<n> = base width with n layers; base; large;
    L<n>H<h> = n layers of width h (FFN 4h, heads h/64 or 1), for smoke tests."""
    custom = re.fullmatch(r"L(\d+)H(\d+)", name)
    if custom:
        layers, hidden = int(custom.group(1)), int(custom.group(2))
        return Dims(name, layers, hidden, 4 * hidden, max(1, hidden // 64))
    if name == "tiny":
        args = fairseq_args(spanbert_argv(data_dir, "spanbert_tiny", None))
        return Dims("tiny", args.encoder_layers, args.encoder_embed_dim, args.encoder_ffn_embed_dim,
                    args.encoder_attention_heads)
    if name.startswith("base-L"):
        return Dims(name, int(name[len("base-L"):]), 768, 3072, 12)
    if name == "base":
        return Dims(name, 12, 768, 3072, 12)
    if name == "large":
        return Dims(name, 24, 1024, 4096, 16)
    raise SystemExit(f"unknown size {name!r}: use tiny, base-L<n>, base, large or L<n>H<h>")


def spanbert_arch(dims):
    return "spanbert_tiny" if dims.name == "tiny" else "spanbert_large" if dims.name == "large" else "spanbert_base"


# ---------------------------------------------------------------------------- fairseq set-up
def import_plugin():
    """Import the plugin from --user-dir's path, as fairseq-train does (BENCH_USER_DIR may redirect it)."""
    from fairseq import utils

    utils.import_user_module(argparse.Namespace(user_dir=benchlib.USER_DIR))


def fairseq_args(argv):
    from fairseq import options

    parser = options.get_training_parser()
    return options.parse_args_and_arch(parser, input_args=argv)


def fairseq_side(argv):
    """(model, criterion) exactly as fairseq-train builds them from this command line."""
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    cfg = convert_namespace_to_omegaconf(fairseq_args(argv))
    task = tasks.setup_task(cfg.task)
    return task, task.build_model(cfg.model), task.build_criterion(cfg.criterion)


def spanbert_argv(data_dir, arch, dims, seq_len=512):
    argv = [str(data_dir), "--user-dir", benchlib.USER_DIR, "--task", "span_bert",
            "--criterion", "span_bert", "--arch", arch, "--tokens-per-sample", str(seq_len)]
    return argv + (dims_argv(dims) if dims is not None else [])


def dims_argv(dims):
    return ["--encoder-layers", str(dims.layers), "--encoder-embed-dim", str(dims.hidden),
            "--encoder-ffn-embed-dim", str(dims.ffn), "--encoder-attention-heads", str(dims.heads)]


def roberta_dict_dir(work_dir):
    """A masked_lm data dir whose dictionary has BERT's size: 4 fairseq specials + entries + <mask>."""
    path = Path(work_dir) / "roberta_dict"
    path.mkdir(parents=True, exist_ok=True)
    entries = BERT_VOCAB_SIZE - 5
    (path / "dict.txt").write_text("".join(f"tok{i} 1\n" for i in range(entries)))
    return path


def roberta_argv(dict_dir, dims, seq_len=512):
    return [str(dict_dir), "--task", "masked_lm", "--criterion", "masked_lm", "--arch", "roberta_base",
            "--max-positions", str(seq_len), "--tokens-per-sample", str(seq_len)] + dims_argv(dims)


# ---------------------------------------------------------------------------- batches
def spanbert_batch(data_dir, dims, batch, seq_len, seed=1):
    """`batch` full-length blocks collated by the span_bert task (the batch contract)."""
    import_plugin()
    task, _, _ = fairseq_side(spanbert_argv(data_dir, spanbert_arch(dims), dims, seq_len) + ["--seed", str(seed)])
    task.load_dataset("train", epoch=1)
    dataset = task.dataset("train")
    longest = sorted(range(len(dataset)), key=lambda i: -int(dataset.sizes[i]))[:batch]
    return dataset.collater([dataset[i] for i in longest])


def roberta_sample(sample, pad, mask_idx):
    """The span_bert batch in fairseq's masked_lm layout: same rows, same masked positions.

    Only the special ids differ ([PAD] 0 -> <pad> 1, [CLS] -> <s> 0, [SEP] -> </s> 2,
    [MASK] -> <mask>); every other id is kept, so both models see the same token rows.
    """
    src = sample["net_input"]["src_tokens"].clone()
    target = sample["target"].clone()
    src_is = {name: src.eq(idx) for name, idx in (("pad", 0), ("unused0", 1), ("cls", 101), ("sep", 102),
                                                  ("mask", 103), ("unused1", 2))}
    src[src_is["pad"]] = pad
    src[src_is["cls"]] = 0
    src[src_is["sep"]] = 2
    src[src_is["mask"]] = mask_idx
    src[src_is["unused0"] | src_is["unused1"]] = 3
    target[target.eq(0)] = pad
    return {"net_input": {"src_tokens": src, "src_lengths": sample["net_input"]["src_lengths"]},
            "target": target, "ntokens": sample["ntokens"], "nsentences": sample["nsentences"]}


def hf_inputs(sample):
    import torch

    src = sample["net_input"]["src_tokens"]
    labels = sample["target"].masked_fill(sample["target"].eq(0), -100)
    return {"input_ids": src, "attention_mask": src.ne(0).long(), "token_type_ids": torch.zeros_like(src),
            "labels": labels, "next_sentence_label": torch.zeros(src.size(0), dtype=torch.long)}


def to_device(obj, device):
    import torch

    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


# ---------------------------------------------------------------------------- sides
class Side:
    """One model's training step: zero_grad, forward + loss, backward, AdamW step."""

    def __init__(self, name, model, loss_fn, flops, tokens, device, autocast_dtype):
        import torch

        self.name, self.model, self.loss_fn = name, model.to(device).train(), loss_fn
        self.flops, self.tokens, self.device, self.autocast_dtype = flops, tokens, device, autocast_dtype
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.01)
        # bf16 has fp32's exponent range: no loss scaling.
        self.scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype == torch.float16)

    def step(self):
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        device_type = torch.device(self.device).type
        with torch.autocast(device_type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            loss = self.loss_fn(self.model)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()


def fairseq_loss_fn(criterion, sample):
    def loss_fn(model):
        loss, sample_size, _ = criterion(model, sample)
        return loss / sample_size

    return loss_fn


def build_side(name, dims, sample, args):
    import torch

    device, tokens = args.device, sample["net_input"]["src_tokens"].numel()
    size, batch, seq_len = dims.as_cost_size(), sample["net_input"]["src_tokens"].size(0), args.seq_len
    masked = int(sample["target"].ne(0).sum())
    encoder = cost.encoder_flops(size, batch, seq_len)
    if name in ("span_bert", "span_bert_aten_dropout", "span_bert_ckpt"):
        flags = (["--compile"] if args.compile else []) + (["--autocast-bf16"] if args.bf16 else [])
        flags += ["--checkpoint-activations"] if name == "span_bert_ckpt" else []
        _, model, criterion = fairseq_side(spanbert_argv(args.data_dir, spanbert_arch(dims), dims, seq_len) + flags)
        sbo_targets = len(sample["sbo_targets"])
        flops = encoder + cost.mlm_head_flops(size, masked, BERT_VOCAB_SIZE) + cost.sbo_head_flops(
            size, sbo_targets, BERT_VOCAB_SIZE)
        loss_fn = fairseq_loss_fn(criterion, to_device(sample, device))
        if name == "span_bert_aten_dropout":
            loss_fn = with_aten_dropout(loss_fn)
    elif name == "roberta":
        task, model, criterion = fairseq_side(roberta_argv(roberta_dict_dir(args.work_dir), dims, seq_len))
        mapped = roberta_sample(sample, task.source_dictionary.pad(), task.mask_idx)
        flops = encoder + cost.mlm_head_flops(size, masked, len(task.source_dictionary))
        loss_fn = fairseq_loss_fn(criterion, to_device(mapped, device))
    elif name == "hf_bert":
        model = hf_model(dims, seq_len)
        inputs = to_device(hf_inputs(sample), device)
        flops = encoder + cost.mlm_head_flops(size, tokens, BERT_VOCAB_SIZE)
        loss_fn = lambda m: m(**inputs).loss  # noqa: E731
    else:
        raise SystemExit(f"unknown side {name!r}")
    torch.manual_seed(0)
    autocast_dtype = torch.float16 if args.fp16 else torch.bfloat16 if args.bf16 else None
    return Side(name, model, loss_fn, flops, tokens, device, autocast_dtype)


def with_aten_dropout(loss_fn):
    """loss_fn with the plugin's dropout and attention swapped for aten's during the forward (the
    backward of F.dropout and SDPA is aten's own)."""
    import torch.nn.functional as F

    from spanbert_fairseq.models import bert_encoder, dropout

    def aten_attention(q, k, v, attn_mask, dropout_p):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)

    def run(model):
        saved = dropout.dropout, bert_encoder.attention
        dropout.dropout, bert_encoder.attention = F.dropout, aten_attention
        try:
            return loss_fn(model)
        finally:
            dropout.dropout, bert_encoder.attention = saved

    return run


def hf_model(dims, seq_len):
    from transformers import BertConfig, BertForPreTraining

    config = BertConfig(vocab_size=BERT_VOCAB_SIZE, hidden_size=dims.hidden, num_hidden_layers=dims.layers,
                        num_attention_heads=dims.heads, intermediate_size=dims.ffn,
                        max_position_embeddings=seq_len, layer_norm_eps=1e-12, hidden_act="gelu")
    config._attn_implementation = "sdpa"
    return BertForPreTraining(config)


# ---------------------------------------------------------------------------- memory child
def child_main(args):
    """Build one side alone and print its training peak memory as one JSON line."""
    import torch

    sample = torch.load(args.child_sample)  # tensors, ints and dicts only
    dims = Dims(**json.loads(args.child_dims))
    cuda = args.device.startswith("cuda")
    prime_runtime(args.device)
    base = torch.cuda.memory_allocated() if cuda else benchlib.rss_bytes()
    side = build_side(args.child_side, dims, sample, args)
    side.step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        benchlib.reset_rss_peak()
    for _ in range(args.memory_steps):
        side.step()
    peak = torch.cuda.max_memory_allocated() if cuda else benchlib.rss_peak_bytes()
    print(json.dumps({"side": side.name, "peak_bytes": peak - base}))


def prime_runtime(device):
    """Load every library and warm torch's kernels before the baseline is read.

    Imports (fairseq, the plugin, transformers) and first-use buffers (thread pools, BLAS
    workspaces) would otherwise count as the side's training memory.
    """
    import torch
    import torch.nn.functional as F
    import transformers.models.bert.modeling_bert  # noqa: F401

    import_plugin()
    layer = torch.nn.Linear(64, 64).to(device)
    x = torch.randn(2, 4, 8, 64, device=device)
    y = F.scaled_dot_product_attention(layer(x), x, x, dropout_p=0.1)
    F.cross_entropy(y.flatten(0, 2), torch.zeros(64, dtype=torch.long, device=device)).backward()
    optimizer = torch.optim.AdamW(layer.parameters())
    optimizer.step()
    del layer, x, y, optimizer


def measure_memory(side_name, dims, sample_path, args):
    cmd = [sys.executable, __file__, "--child-side", side_name, "--child-dims", json.dumps(dims.__dict__),
           "--child-sample", str(sample_path), "--device", args.device, "--seq-len", str(args.seq_len),
           "--data-dir", str(args.data_dir), "--work-dir", str(args.work_dir),
           "--memory-steps", str(args.memory_steps)]
    cmd += [flag for flag, on in (("--fp16", args.fp16), ("--bf16", args.bf16), ("--compile", args.compile)) if on]
    out = subprocess.run(cmd, env=benchlib.malloc_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"memory child for {side_name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"]


# ---------------------------------------------------------------------------- driver
def gpu_peak_tflops(args):
    if args.peak_tflops:
        return args.peak_tflops
    import torch

    if not args.device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(0)
    return next((v for k, v in GPU_PEAK_TFLOPS.items() if k in name), None)


def run_size(size_name, args):
    import torch

    dims = resolve_size(size_name, args.data_dir)
    sample = spanbert_batch(args.data_dir, dims, args.batch, args.seq_len)
    sides = {name: build_side(name, dims, sample, args) for name in args.sides}
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    first = {name: first_step_seconds(side, sync) for name, side in sides.items()}
    times = benchlib.interleaved_times({n: s.step for n, s in sides.items()}, args.rounds, args.warmup, sync)
    memory = {}
    if args.memory:
        sample_path = Path(args.work_dir) / f"sample_{size_name}.pt"
        torch.save(sample, sample_path)
        release_models(sides)
        memory = {name: measure_memory(name, dims, sample_path, args) for name in args.sides}
    return dims, sample, sides, first, times, memory


def first_step_seconds(side, sync):
    """The side's first step alone: allocations, and for a compiled side its compilation."""
    import time

    start = time.perf_counter()
    side.step()
    if sync:
        sync()
    return time.perf_counter() - start


def release_models(sides):
    """Free the timing models before the memory children start (they would share RAM/GPU)."""
    import gc

    import torch

    for side in sides.values():
        side.model, side.optimizer, side.loss_fn = None, None, None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def report(results, args):
    peak = gpu_peak_tflops(args)
    header = ["size", "side", "batch x T", "step ms (median)", "IQR/median", "tokens/s", "step ratio sb/side",
              "paired ratio (95% CI)", "model FLOPs sb/side", "GFLOP/s", "peak MiB", "mem ratio sb/side",
              "first step s"]
    header += ["MFU"] if peak else []
    rows, summary = [], []
    for size_name, (dims, sample, sides, first, times, memory) in results.items():
        sb_time = benchlib.median(times["span_bert"]) if "span_bert" in times else None
        sb_times = times.get("span_bert")
        sb_flops = sides["span_bert"].flops if "span_bert" in sides else None
        for name in args.sides:
            med = benchlib.median(times[name])
            tokens = sides[name].tokens
            paired = benchlib.paired_ratio(sb_times, times[name]) if sb_times else None
            paired_cell = f"{paired[0]:.3f} ({paired[1]:.3f}-{paired[2]:.3f})" if paired else "-"
            row = [f"{size_name} (L{dims.layers} H{dims.hidden})", name,
                   f"{sample['net_input']['src_tokens'].size(0)} x {args.seq_len}", f"{med * 1e3:.1f}",
                   f"{benchlib.spread(times[name]):.2f}", f"{tokens / med:,.0f}",
                   f"{sb_time / med:.3f}" if sb_time else "-", paired_cell,
                   f"{sb_flops / sides[name].flops:.3f}" if sb_flops else "-", f"{sides[name].flops / med / 1e9:,.1f}"]
            row += memory_cells(memory, name) + [f"{first[name]:.1f}"]
            if peak:
                row.append(f"{sides[name].flops / med / (peak * 1e12):.1%}")
            rows.append(row)
            if sb_time and name != "span_bert":
                summary.append(f"{size_name} vs {name}: time x{sb_time / med:.3f}, paired {paired_cell}"
                               + (f", mem x{memory['span_bert'] / memory[name]:.2f}" if memory else ""))
    benchlib.print_table(header, rows)
    return summary


def memory_cells(memory, name):
    if not memory:
        return ["-", "-"]
    ratio = memory["span_bert"] / memory[name] if "span_bert" in memory else None
    return [f"{memory[name] / 2**20:,.0f}", f"{ratio:.3f}" if ratio else "-"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,base-L2", help="comma list: tiny, base-L<n>, base, large")
    parser.add_argument("--sides", default=",".join(SIDES), help="comma list of " + ", ".join(SIDES + BY_NAME_SIDES))
    parser.add_argument("--batch", type=int, default=8, help="sequences per step")
    parser.add_argument("--seq-len", type=int, default=512, help="tokens per sequence (tokens_per_sample)")
    parser.add_argument("--rounds", type=int, default=10, help="timed steps per side (interleaved)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per side after the first")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fp16", action="store_true", help="CUDA autocast fp16 + GradScaler on every side")
    parser.add_argument("--bf16", action="store_true",
                        help="autocast bf16 on every side (span_bert through its --autocast-bf16), no loss scaling")
    parser.add_argument("--compile", action="store_true", help="span_bert built with --compile (the others eager)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="GPU peak for MFU (else from its name)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the memory children")
    parser.add_argument("--memory-steps", type=int, default=2, help="steps per memory child after warm-up")
    benchlib.add_data_args(parser)
    parser.set_defaults(corpus_mb=1.0)  # 1 MB of pydoc prose: the batches take the longest blocks
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--child-side", help=argparse.SUPPRESS)
    parser.add_argument("--child-dims", help=argparse.SUPPRESS)
    parser.add_argument("--child-sample", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sides = [s for s in args.sides.split(",") if s]
    args.sizes = [s for s in args.sizes.split(",") if s]
    if args.fp16 and not args.device.startswith("cuda"):
        parser.error("--fp16 needs --device cuda (CPU steps run in fp32)")
    if args.compile and "span_bert_aten_dropout" in args.sides:
        parser.error("span_bert_aten_dropout runs eagerly: leave out --compile")
    if args.fp16 and args.bf16:
        parser.error("--fp16 and --bf16 exclude each other")
    return args


def prepare_data(args):
    """The binaries, and a --work-dir that always exists: the memory children's samples go there."""
    args.work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_train_step_"))
    args.work_dir.mkdir(parents=True, exist_ok=True)
    args.data_dir = benchlib.prepare_data(args, "bench_train_step_")


def main(argv=None):
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_side:
        return child_main(args)
    prepare_data(args)
    print(benchlib.machine_line(args.device))
    print(benchlib.versions_line())
    results = {size: run_size(size, args) for size in args.sizes}
    summary = report(results, args)
    print(f"bench_train_step: {args.rounds} interleaved steps per side after 1 + {args.warmup} warm-up, "
          f"{args.device}{' fp16' if args.fp16 else ''}{' bf16' if args.bf16 else ''}"
          f"{', span_bert compiled' if args.compile else ''}; span_bert " + "; ".join(summary)
          + " (table above, stdout)")


if __name__ == "__main__":
    benchlib.quiet()
    main()
