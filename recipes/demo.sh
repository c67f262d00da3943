#!/usr/bin/env bash
# The whole pipeline in minutes on a CPU: set-up, corpus, WordPiece + binaries, SpanBERT
# pretraining of spanbert_tiny, span filling with the trained checkpoint, and its evaluation by
# span length.
#
#   bash recipes/demo.sh
#
# Output in DEMO_DIR (default ./demo): corpus.txt, data/ (vocab + binaries), checkpoints/
# (checkpoints + vocab, loadable with SpanBertModel.from_pretrained), train.log (full log),
# train_curves.png (loss and accuracy against updates), eval.json (spanbert-eval's figures).
# TRAIN_MINUTES (default 6) bounds the training time; a rerun reuses the corpus and data and
# trains afresh. On 2 cores the whole demo takes under 10 minutes, set-up included. The training
# settings, and the measurements behind each: docs/training.md ("The demo's settings").
set -euo pipefail
RECIPE=demo.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${DEMO_DIR:-demo}
TRAIN_MINUTES=${TRAIN_MINUTES:-6}
PREPROCESS=("${DEFAULT_CORPUS_VOCAB[@]}" --valid-fraction 0.05)
START=$SECONDS

step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - START)); }

step "1/6 environment: scripts/setup.sh"
use_project_env
# Every core: on 2 idle cores, batches of 128 go 1.5x as many tokens a second with 2 threads as with
# 1. On a machine busy with other work, OMP_NUM_THREADS=1 is the faster (docs/training.md).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc --all)}
mkdir -p "$OUT"

step "2/6 corpus: Python's own documentation, embedded in the package"
if [[ ! -s $OUT/corpus.txt ]]; then
  run python -m spanbert_preprocess.default_corpus "$OUT/corpus.txt"
else
  echo "reusing $OUT/corpus.txt"
fi

step "3/6 preprocess: train an uncased 2,000-piece WordPiece vocabulary, write fairseq binaries"
# Reused only if it was made with these settings (an older demo made another vocabulary).
if [[ -f $OUT/data/valid.idx && $(cat "$OUT/data/demo-preprocess.txt" 2>/dev/null) == "${PREPROCESS[*]}" ]]; then
  echo "reusing $OUT/data"
else
  rm -rf "$OUT/data"
  run spanbert-preprocess "$OUT/corpus.txt" "${PREPROCESS[@]}" --workers "$(nproc --all)" --destdir "$OUT/data"
  echo "${PREPROCESS[*]}" > "$OUT/data/demo-preprocess.txt"
fi

step "4/6 pretrain spanbert_tiny on CPU for at most $TRAIN_MINUTES minutes (full log: $OUT/train.log)"
rm -rf "$OUT/checkpoints"
TRAIN=(fairseq-train "$OUT/data" --user-dir "$PWD/spanbert_fairseq"
  --task span_bert --criterion span_bert --arch spanbert_tiny --cpu
  --tokens-per-sample 32 --batch-size 128 --dropout 0 --attention-dropout 0
  --optimizer adam --adam-betas "(0.9, 0.98)" --adam-eps 1e-6 --weight-decay 0.01 --clip-norm 1.0
  --lr 3e-3 --lr-scheduler polynomial_decay --warmup-updates 200
  --total-num-update 3600 --max-update 3600 --stop-time-hours "$(python -c "print($TRAIN_MINUTES / 60)")"
  --save-dir "$OUT/checkpoints" --no-epoch-checkpoints --save-interval-updates 1000
  --validate-interval-updates 500 --num-workers 0 --seed 1
  --log-format simple --log-interval 100)
echo "+ $(printf '%q ' "${TRAIN[@]}")"
# Progress on the screen (updates, losses in bits, accuracies in %), everything in train.log.
if ! "${TRAIN[@]}" 2>&1 | tee "$OUT/train.log" \
    | grep --line-buffered -E "\| (train_inner|valid|train) \||Saved checkpoint|Stopping|error"; then
  tail -n 30 "$OUT/train.log" >&2
  die "training failed; see $OUT/train.log"
fi
[[ -f $OUT/checkpoints/checkpoint_last.pt ]] || die "no checkpoint written; see $OUT/train.log"
# A self-contained model directory: checkpoints next to the vocabulary and tokenizer.
cp "$OUT/data/dict.txt" "$OUT/data/vocab.txt" "$OUT/data/tokenizer.json" "$OUT/checkpoints/"

step "5/6 span filling with the trained model (SpanBertModel.from_pretrained)"
run python recipes/demo_fill_spans.py "$OUT/checkpoints" checkpoint_last.pt

step "6/6 evaluation: spanbert-eval by span length on the valid split; training curves"
run python recipes/plot_training_curves.py "$OUT/train_curves.png" "$OUT/train.log"
run spanbert-eval "$OUT/checkpoints/checkpoint_last.pt" --data "$OUT/data" --json "$OUT/eval.json"

updates=$(grep -oE "num_updates[= ]+[0-9]+" "$OUT/train.log" | tail -n 1 | grep -oE "[0-9]+$")
valid=$(grep -E "\| valid \|" "$OUT/train.log" | tail -n 1 | grep -oE "mlm_acc [0-9.]+ \| sbo_acc [0-9.]+" || true)
echo
echo "demo.sh: done in $((SECONDS - START))s: default corpus -> 2,000-piece WordPiece -> spanbert_tiny," \
  "$updates updates on CPU (last valid ${valid:-n/a}) -> $OUT/checkpoints/checkpoint_last.pt; log $OUT/train.log," \
  "curves $OUT/train_curves.png"
