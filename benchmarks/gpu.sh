#!/usr/bin/env bash
# The GPU check, one script, one GPU, 12-15 minutes by estimate (not run yet: no GPU was lent):
#  (a) issue 3: fairseq-train spanbert_base --fp16 for $UPDATES updates on the embedded default
#      corpus: tokens/s, model-FLOPs utilisation, peak GPU memory and the loss curve;
#  (b) bench_train_step.py: spanbert_base fp16 vs fairseq roberta base (masked_lm) vs HF
#      BertForPreTraining, same batch: step time, tokens/s, MFU, peak memory, with the card's name;
#  (c) as (a) in bf16 mixed precision instead: --autocast-bf16 (fp32 weights; fairseq 0.12's own
#      --bf16 needs a TPU);
#  (d) as (b) under bf16 autocast, then span_bert with --compile against eager roberta.
# Prepare once on a machine with PyPI: `bash benchmarks/gpu_prepare.sh` (wheels + vocab in .whl/).
# Then on the GPU machine, from the repo root:  bash benchmarks/gpu.sh   (device tool: carry [".whl"])
# Everything lands in $OUT (default runs/gpu): gpu.txt, train{,_bf16}.log, loss_curve{,_bf16}.md,
# train_step{,_bf16,_bf16_compile}.md, summary.txt.
# DRY_CPU=1 checks the plumbing on a CPU machine (spanbert_tiny, fp32 and CPU bf16 autocast, few
# updates; numbers meaningless).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
WORK=${WORK:-/tmp/spanbert_gpu}
PY=${PYTHON:-python3}
UPDATES=${UPDATES:-200}
BATCH=${BATCH:-32}
ARCH=spanbert_base SIZE=base DEVICE=() FP16=(--fp16) BENCH_DEVICE=(--device cuda) ROUNDS=20 WARMUP=5
if [ "${DRY_CPU:-0}" = 1 ]; then
  UPDATES=${DRY_UPDATES:-6} BATCH=2 ARCH=spanbert_tiny SIZE=tiny DEVICE=(--cpu) FP16=() BENCH_DEVICE=(--device cpu)
  ROUNDS=2 WARMUP=1
fi
export BENCH_VOCAB=${BENCH_VOCAB:-$PWD/.whl/vocab.txt}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
mkdir -p "$OUT" "$WORK"
log() { echo "[gpu.sh $(date -u +%H:%M:%S)] $*"; }

# ---- 0. the card and the environment
if [ "${DRY_CPU:-0}" = 1 ]; then echo "DRY_CPU, $(nproc) CPU cores" > "$OUT/gpu.txt"
else nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"; fi
[ -f "$BENCH_VOCAB" ] || { echo "gpu.sh: no vocabulary at $BENCH_VOCAB: run benchmarks/gpu_prepare.sh and carry .whl" >&2; exit 2; }
if ! "$PY" -c "import fairseq" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "gpu.sh: fairseq missing and no wheels in .whl/: run benchmarks/gpu_prepare.sh" >&2; exit 2; }
  log "installing fairseq wheels from .whl/"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl
fi
if ! "$PY" -c "import spanbert_fairseq, spanbert_preprocess.cli" 2>/dev/null; then
  log "installing spanbert_fairseq (editable; compiles the masking kernel)"
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .
fi
"$PY" -c "import torch, fairseq; print('torch', torch.__version__, 'fairseq', fairseq.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))" \
  | tee -a "$OUT/gpu.txt"

# ---- 1. data: the embedded default corpus, binarised
if [ ! -f "$WORK/data/train.idx" ]; then
  log "building the default corpus and binaries in $WORK"
  "$PY" -m spanbert_preprocess.default_corpus "$WORK/corpus.txt"
  "$PY" -m spanbert_preprocess.cli "$WORK/corpus.txt" --vocab "$BENCH_VOCAB" --destdir "$WORK/data" \
    --valid-fraction 0.02 --workers 8
fi

# ---- 2. fairseq-train: (a) --fp16, (c) --autocast-bf16; each with the peak memory read at exit
TRAIN_ARGS=("$WORK/data" --user-dir spanbert_fairseq --task span_bert --criterion span_bert
  --arch "$ARCH" --tokens-per-sample 512 --batch-size "$BATCH" "${DEVICE[@]}"
  --optimizer adam --adam-betas "(0.9, 0.999)" --adam-eps 1e-8 --weight-decay 0.01 --clip-norm 1.0
  --lr 5e-4 --lr-scheduler polynomial_decay --warmup-updates 20 --total-num-update "$UPDATES"
  --max-update "$UPDATES" --log-format json --log-interval "$(( UPDATES < 50 ? 1 : 10 ))" --num-workers 4
  --validate-interval-updates "$(( UPDATES / 2 ))" --no-epoch-checkpoints --seed 1)

train() {  # label, output suffix, precision flags...
  local label=$1 suffix=$2; shift 2
  log "($label) fairseq-train $ARCH ${DEVICE[*]} $*, $UPDATES updates of $BATCH x 512"
  "$PY" - "${TRAIN_ARGS[@]}" --save-dir "$WORK/checkpoints$suffix" "$@" <<'EOF' 2>&1 | tee "$OUT/train$suffix.log"
import sys
import torch
from fairseq_cli.train import cli_main

sys.argv = ["fairseq-train"] + sys.argv[1:]
try:
    cli_main()
finally:
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else float("nan")
    print(f"PEAK_MEMORY_ALLOCATED_GIB {peak / 2**30:.2f}")
EOF
  "$PY" - "$OUT/train$suffix.log" "$BATCH" "$ARCH" "$label" "$*" <<'EOF' | tee "$OUT/loss_curve$suffix.md"
import json, re, statistics, sys
sys.path.insert(0, "benchmarks")
import cost
import torch

log, batch, (arch, label, flags) = open(sys.argv[1]).read().splitlines(), int(sys.argv[2]), sys.argv[3:]
inner = [json.loads(m.group(1)) for line in log if (m := re.search(r"\| train_inner \| (\{.*\})", line))]
valid = [json.loads(m.group(1)) for line in log if (m := re.search(r"\| valid \| (\{.*\})", line))]
peak = next(line.split()[-1] for line in log if line.startswith("PEAK_MEMORY_ALLOCATED_GIB"))
print("| update | loss | mlm_loss | sbo_loss | mlm_acc | sbo_acc | wps | loss_scale |")
print("|---|---|---|---|---|---|---|---|")
for row in inner:
    print("| " + " | ".join(str(row.get(k, "-")) for k in
                            ("num_updates", "loss", "mlm_loss", "sbo_loss", "mlm_acc", "sbo_acc", "wps", "loss_scale")) + " |")
for row in valid:
    print(f"valid at {row.get('valid_num_updates')}: loss {row.get('valid_loss')}, mlm_acc {row.get('valid_mlm_acc')}, "
          f"sbo_acc {row.get('valid_sbo_acc')}")
wps = statistics.median(float(r["wps"]) for r in inner[2:] or inner)
size = cost.SIZES.get(arch, cost.Size(arch, 2, 128, 512, 2))
flops_per_token = cost.spanbert_update_flops(size, 1, 512, 30522) / 512
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (dry run)"
peak_tflops = next((v for k, v in {"H100": 989.0, "H200": 989.0, "A100": 312.0, "V100": 125.0}.items() if k in name), None)
mfu = f", MFU {wps * flops_per_token / (peak_tflops * 1e12):.1%} of {peak_tflops:g} TFLOPS" if peak_tflops else ""
print(f"({label}) {name}: fairseq-train {arch} {flags}, {batch} x 512/update: median {wps:,.0f} tokens/s "
      f"(from the 3rd log line){mfu}, peak memory allocated {peak} GiB, loss {inner[0]['loss']} -> {inner[-1]['loss']}")
EOF
}

bench() {  # label, output suffix, benchmark flags...
  local label=$1 suffix=$2; shift 2
  log "($label) bench_train_step at size $SIZE, ${BENCH_DEVICE[*]} $*, $BATCH x 512"
  "$PY" benchmarks/bench_train_step.py "${BENCH_DEVICE[@]}" "$@" --sizes "$SIZE" --batch "$BATCH" --rounds "$ROUNDS" \
    --warmup "$WARMUP" --data-dir "$WORK/data" --work-dir "$WORK/train_step" 2>&1 | tee "$OUT/train_step$suffix.md"
}

train a "" "${FP16[@]}"
# ---- 3. (b) the training-step benchmark at base size: span_bert vs roberta vs HF BertForPreTraining
bench b "" "${FP16[@]}"
# ---- 4. bf16 mixed precision: (c) fairseq-train, (d) the train step eager, then span_bert compiled
train c _bf16 --autocast-bf16
bench d _bf16 --bf16
bench d _bf16_compile --bf16 --compile --sides span_bert,roberta

{ cat "$OUT/gpu.txt"; for f in loss_curve loss_curve_bf16 train_step train_step_bf16 train_step_bf16_compile; do
    tail -n 1 "$OUT/$f.md"; done; } > "$OUT/summary.txt"
log "gpu.sh: done; summary:"
cat "$OUT/summary.txt"
echo "gpu.sh: measured (a, c) fairseq-train $ARCH fp16 and bf16, (b, d) train-step ratios at size $SIZE on $(head -n1 "$OUT/gpu.txt" | cut -d, -f1); outputs in $OUT/"
