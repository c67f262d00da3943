#!/usr/bin/env bash
# Every CPU benchmark with the settings docs/benchmarks.md reports, one after another; each
# script's output goes to $OUT/<name>.md (default runs/bench). About 15 minutes on 2 cores.
#   bash benchmarks/run_cpu.sh            # ONLY=train_step bash benchmarks/run_cpu.sh  runs one
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/bench}
WORK=${WORK:-/tmp/spanbert_bench}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1

run() {  # name, command...
  local name=$1; shift
  if [ -n "${ONLY:-}" ] && [ "$ONLY" != "$name" ]; then return; fi
  echo "== $name: $*"
  "$@" 2>&1 | grep -v '^WARNING\|^INFO' | tee "$OUT/$name.md"
}

# One set of binaries (the embedded default corpus) for the pipeline, train-step and scaling runs.
if [ ! -f "$WORK/data/train.idx" ]; then
  "$PY" -m spanbert_preprocess.default_corpus "$WORK/corpus.txt"
  "$PY" -m spanbert_preprocess.cli "$WORK/corpus.txt" --destdir "$WORK/data" --workers 2 \
    --vocab "$("$PY" -c 'import sys; sys.path.insert(0, "benchmarks"); import benchlib; print(benchlib.bert_vocab_path())')"
  cp "$WORK/data/train.bin" "$WORK/data/valid.bin" 2>/dev/null || true
  cp "$WORK/data/train.idx" "$WORK/data/valid.idx" 2>/dev/null || true
fi

run cost "$PY" benchmarks/cost.py
run data_pipeline "$PY" benchmarks/bench_data_pipeline.py --batch 8 --chunk 20 --rounds 10 --data-dir "$WORK/data"
run preprocess "$PY" benchmarks/bench_preprocess.py --workers 2 --rounds 3 --corpus "$WORK/corpus.txt" \
  --work-dir "$WORK/preprocess"
run train_step "$PY" benchmarks/bench_train_step.py --sizes tiny,base-L2 --batch 4 --rounds 8 --warmup 1 \
  --data-dir "$WORK/data" --work-dir "$WORK/train_step"
run dropout "$PY" benchmarks/bench_dropout.py --batch 2 --rounds 20
run scaling "$PY" benchmarks/bench_scaling.py --updates 12 --skip 2 --rounds 2 --batch 4 --data-dir "$WORK/data"
echo "run_cpu: outputs in $OUT/ ($(ls "$OUT" | tr '\n' ' '))"
