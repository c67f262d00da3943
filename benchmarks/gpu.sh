#!/usr/bin/env bash
# The GPU check: one command on one GPU (made for the H200 this project can be lent), at most 7
# minutes from its start to its summary table, which it prints last and writes to $OUT/summary.md
# (and .json), with every raw log in $OUT/logs.tar.gz (3 files: the device tool returns at most 8).
#
#   bash benchmarks/gpu_prepare.sh      # here, once, with PyPI: .whl/ (wheels + vocab.txt, ~21 MB)
#   bash benchmarks/gpu.sh              # there; device tool: carry [".whl"], timeout_s 600
#   DRY_CPU=1 bash benchmarks/gpu.sh    # the same steps on a CPU: spanbert_tiny, 2 x 512, few updates
#
# Rows (fairseq-train spanbert_base, 200 updates of 32 x 512, one epoch of the corpus, no
# validation, no checkpoint): --fp16, --amp, --autocast-bf16, --compile --autocast-bf16, each with
# tokens/s, MFU against the card's own bf16 matmul rate (measured first), peak memory, the losses
# (all finite?) and the dtype nn.Linear outputs had (an --amp run whose GEMMs fell back to fp32
# shows it); then bench_train_step.py span_bert vs roberta base, 32 x 512, both under fp16
# autocast, then both under bf16 autocast.
#
# Time budget on an H200 (estimates; no GPU has run this yet). Each step runs under `timeout` with
# the smaller of its own limit and what is left of the 420 s, keeping 15 s for the table; a row
# that does not fit is skipped and says so, a row that fails or times out says why, and the rest go on.
#   step                                             expect   own limit
#   install 5 wheels + build the Cython kernel         25 s     150 s
#   bf16 matmul 8192^3 (3 warm-up + 10 timed)           5 s      40 s
#   corpus (8 x the default corpus) + binaries         15 s      60 s
#   fp16      fairseq-train --fp16                     35 s      75 s   (~15 s start + 200 x ~0.06 s)
#   amp       fairseq-train --amp                      40 s      90 s   (fp32 GEMMs would be ~0.2 s/update)
#   bf16      fairseq-train --autocast-bf16            35 s      75 s
#   step_fp16 bench_train_step --fp16                  45 s      75 s   (2 sides, 26 steps each, 2 memory children)
#   step_bf16 bench_train_step --bf16                  45 s      75 s
#   compile   fairseq-train --compile --autocast-bf16  70 s     150 s   (compilation ~30-60 s; runs last)
#   summary                                             2 s
#   total                                            ~320 s    420 s enforced
# Knobs: ROWS=fp16,bf16 runs a subset; TIMEOUT_<row>=S overrides a row's limit; BUDGET_S (420;
# DRY_CPU 1500, with every own limit x LIMIT_SCALE=4); UPDATES, BATCH; MEMORY=0 drops the train
# step's memory children; OUT (runs/gpu), WORK, PYTHON (python3).
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
SUMMARY_RESERVE_S=15
OUT=${OUT:-runs/gpu}
WORK=${WORK:-/tmp/spanbert_gpu}
LOGS=$WORK/logs
PY=${PYTHON:-python3}
ROWS=${ROWS:-fp16,amp,bf16,step_fp16,step_bf16,compile}
if [ "${DRY_CPU:-0}" = 1 ]; then
  ARCH=spanbert_tiny SIZE=tiny DEVICE=(--cpu) BENCH_DEVICE=cpu WORKERS=1 CORPUS_COPIES=1
  UPDATES=${UPDATES:-8} BATCH=${BATCH:-2} LOG_INTERVAL=2 ROUNDS=3 WARMUP=1
  # A 2-core CPU is slower at every step than the GPU the limits are made for (CPU fp16 GEMMs most).
  BUDGET_S=${BUDGET_S:-1500} LIMIT_SCALE=${LIMIT_SCALE:-4}
  # CPU: fairseq's --amp is CUDA autocast (a no-op here) and the train step's "fp16" runs fp32.
  AMP_DTYPE=float32 STEP_FP16_FLAG=() STEP_FP16_DTYPE=float32
else
  ARCH=spanbert_base SIZE=base DEVICE=() BENCH_DEVICE=cuda WORKERS=4 CORPUS_COPIES=8
  UPDATES=${UPDATES:-200} BATCH=${BATCH:-32} LOG_INTERVAL=10 ROUNDS=20 WARMUP=5
  BUDGET_S=${BUDGET_S:-420} LIMIT_SCALE=${LIMIT_SCALE:-1}
  AMP_DTYPE=float16 STEP_FP16_FLAG=(--fp16) STEP_FP16_DTYPE=float16
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
rm -rf "$LOGS" && mkdir -p "$OUT" "$LOGS"
log() { echo "[gpu.sh +$((SECONDS - START))s] $*"; }
left() { echo $((BUDGET_S - SUMMARY_RESERVE_S - (SECONDS - START))); }
limit_for() {  # row, own limit -> the limit it runs under (TIMEOUT_<row> overrides)
  local own=$(( $2 * LIMIT_SCALE )) override="TIMEOUT_$1"
  own=${!override:-$own}
  local rest; rest=$(left)
  echo $(( own < rest ? own : rest ))
}
refresh() {  # the table so far and the logs, in $OUT after every row (a killed run still returns them)
  "$PY" benchmarks/gpu_check.py summary "$LOGS" "$OUT" > "$LOGS/summary.stdout" 2>&1
  tar czf "$OUT/logs.tar.gz" -C "$WORK" logs
}
die() { echo "gpu.sh: $*" | tee -a "$LOGS/environment.txt" >&2; tar czf "$OUT/logs.tar.gz" -C "$WORK" logs; exit 2; }

# ---- 0. the card, the wheels, the plugin (its Cython kernel is built there)
{ if [ "${DRY_CPU:-0}" = 1 ]; then echo "DRY_CPU: $(nproc) CPU cores"
  else nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi; } \
  > "$LOGS/environment.txt" 2>&1 || die "nvidia-smi failed: $(cat "$LOGS/environment.txt")"
# find_spec and a file test, not imports: importing fairseq costs seconds, and every row imports it anyway.
if ! "$PY" -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ('fairseq', 'hydra', 'omegaconf', 'bitarray', 'antlr4')))"; then
  [ -f .whl/requirements.txt ] || die "fairseq is missing and .whl/requirements.txt is not here: run benchmarks/gpu_prepare.sh and carry .whl"
  log "installing the wheels of .whl/requirements.txt (no index)"
  timeout "$(limit_for install 150)" "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --require-hashes --find-links .whl -r .whl/requirements.txt >> "$LOGS/install.log" 2>&1 \
    || die "installing .whl/ failed: $(tail -n 3 "$LOGS/install.log")"
fi
# The kernel built for this interpreter (a copy built for another Python does not count) and the
# installed package (spanbert_preprocess exists only through the install's package_dir).
if ! "$PY" -c "import importlib.util as u, pathlib, sys, sysconfig; kernel = pathlib.Path('spanbert_fairseq/data/span_masking_fast' + sysconfig.get_config_var('EXT_SUFFIX')); sys.exit(not kernel.exists() or u.find_spec('spanbert_preprocess') is None)"; then
  log "installing spanbert_fairseq (editable, no index: compiles the masking kernel)"
  timeout "$(limit_for install 150)" "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . \
    >> "$LOGS/install.log" 2>&1 || die "pip install -e . failed: $(tail -n 3 "$LOGS/install.log")"
fi
VOCAB=${BENCH_VOCAB:-$([ -f .whl/vocab.txt ] && echo "$PWD/.whl/vocab.txt" || "$PY" -c 'import sys; sys.path.insert(0, "benchmarks"); import benchlib; print(benchlib.bert_vocab_path())')}
export BENCH_VOCAB=$VOCAB
: > "$LOGS/rows.tsv"

# ---- 1. the card's own bf16 matmul rate (the MFU denominator), with the versions that ran
log "bf16 matmul rate"
timeout "$(limit_for matmul 40)" "$PY" benchmarks/gpu_check.py matmul "$LOGS/matmul.json" > "$LOGS/matmul.log" 2>&1
cat "$LOGS/environment.txt" "$LOGS/matmul.log"
PEAK=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['tflops'])" "$LOGS/matmul.json" 2>/dev/null)
PEAK_FLAG=(${PEAK:+--peak-tflops "$PEAK"})

# ---- 2. data: the embedded default corpus, CORPUS_COPIES times (200 updates stay in one epoch)
DATA=$WORK/data_x$CORPUS_COPIES
if [ ! -f "$DATA/train.idx" ]; then
  log "corpus and binaries in $DATA"
  { "$PY" -m spanbert_preprocess.default_corpus "$WORK/corpus1.txt" &&
    for _ in $(seq "$CORPUS_COPIES"); do cat "$WORK/corpus1.txt"; done > "$WORK/corpus.txt" &&
    timeout "$(limit_for data 60)" "$PY" -m spanbert_preprocess.cli "$WORK/corpus.txt" --vocab "$VOCAB" \
      --destdir "$DATA" --valid-fraction 0.01 --workers 8; } > "$LOGS/data.log" 2>&1 \
    || die "building the binaries failed: $(tail -n 3 "$LOGS/data.log")"
fi
tail -n 1 "$LOGS/data.log" 2>/dev/null

# ---- 3. the rows
selected() { [[ ",$ROWS," == *",$1,"* ]]; }
row() {  # name, kind, expected Linear dtype, updates asked for, own limit s, flags shown, command...
  local name=$1 kind=$2 expect=$3 target=$4 own=$5 flags=$6; shift 6
  local spec; spec=$(printf '%s\t%s\t%s\t%s\t%s' "$name" "$kind" "$expect" "$target" "$flags")
  if ! selected "$name"; then printf '%s\tnot selected\t\t\n' "$spec" >> "$LOGS/rows.tsv"; return; fi
  local limit; limit=$(limit_for "$name" "$own")
  if (( $(left) < 10 )); then
    printf '%s\tskipped: the %s s budget is spent\t\t\n' "$spec" "$BUDGET_S" >> "$LOGS/rows.tsv"; refresh; return
  fi
  log "($name) $flags, limit ${limit} s"
  local t0=$SECONDS rc
  timeout -k 5 "$limit" "$@" > "$LOGS/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$spec" "$rc" $((SECONDS - t0)) "$limit" >> "$LOGS/rows.tsv"
  log "($name) exit $rc after $((SECONDS - t0)) s"
  refresh
}
train() {  # name, expected dtype, own limit, fairseq-train precision flags...
  local name=$1 expect=$2 own=$3; shift 3
  row "$name" train "$expect" "$UPDATES" "$own" "fairseq-train $ARCH $*" "$PY" benchmarks/gpu_check.py train "$LOGS/$name.json" -- \
    "$DATA" --user-dir spanbert_fairseq --task span_bert --criterion span_bert --arch "$ARCH" "${DEVICE[@]}" \
    --tokens-per-sample 512 --batch-size "$BATCH" --max-update "$UPDATES" --total-num-update "$UPDATES" \
    --optimizer adam --adam-betas "(0.9, 0.999)" --adam-eps 1e-8 --weight-decay 0.01 --clip-norm 1.0 \
    --lr 5e-4 --lr-scheduler polynomial_decay --warmup-updates "$(( UPDATES / 10 ))" \
    --log-format json --log-interval "$LOG_INTERVAL" --num-workers "$WORKERS" --disable-validation --no-save \
    --save-dir "$WORK/checkpoints_$name" --seed 1 "$@"
}
step() {  # name, expected dtype, own limit, bench_train_step precision flags...
  local name=$1 expect=$2 own=$3; shift 3
  local memory=(); [ "${MEMORY:-1}" = 0 ] && memory=(--no-memory)
  row "$name" step "$expect" - "$own" "bench_train_step $SIZE ${*:-fp32} vs roberta" \
    "$PY" benchmarks/gpu_check.py step "$LOGS/$name.json" -- --device "$BENCH_DEVICE" "$@" --sizes "$SIZE" \
    --sides span_bert,roberta --batch "$BATCH" --rounds "$ROUNDS" --warmup "$WARMUP" "${PEAK_FLAG[@]}" \
    "${memory[@]}" --data-dir "$DATA" --work-dir "$WORK/train_step"
}

train fp16 float16 75 --fp16
train amp "$AMP_DTYPE" 90 --amp
train bf16 bfloat16 75 --autocast-bf16
step step_fp16 "$STEP_FP16_DTYPE" 75 "${STEP_FP16_FLAG[@]}"
step step_bf16 bfloat16 75 --bf16
train compile - 150 --compile --autocast-bf16

refresh
cat "$LOGS/summary.stdout"
echo "gpu.sh: $(grep -c . "$LOGS/rows.tsv") rows in $((SECONDS - START)) s on $(head -n 1 "$LOGS/environment.txt" | cut -d, -f1); table in $OUT/summary.md, raw logs in $OUT/logs.tar.gz"
