#!/usr/bin/env bash
# The paper's masking ablation in miniature, on a CPU: spanbert_tiny trained under four variants at
# equal updates and batch, then judged by spanbert-eval on the same masks.
#
#   bash recipes/ablation.sh [DATA]
#
#   variant      masking                         SBO
#   subword      random word pieces (BERT)       no  (--sbo-weight 0)
#   whole_word   random whole words              no
#   span         geometric spans of whole words  no
#   span_sbo     geometric spans (SpanBERT)      yes
#
# DATA: a directory spanbert-preprocess wrote; default: the embedded default corpus (Python's own
# documentation), preprocessed here as demo.sh does. Output in OUT (default runs/ablation):
# VARIANT/train.log and VARIANT/checkpoint_last.pt, eval_span.json and eval_subword.json
# (spanbert-eval on span masks and on subword masks), ablation.md (the tables), curves.png
# (training curves) and accuracy_by_span_length.png.
#
# Environment: UPDATES (default 3000) updates per variant, the budget: UPDATES=300 for a quick
# look; VARIANTS (default all four); JOBS (default 2) trainings at once, one thread each; SEED
# (default 1) the training seed (the evaluation masks stay spanbert-eval's seed 1, so runs with
# other seeds are judged on the same masks).
# On 2 shared cores the default takes about 40 minutes (docs/evaluation.md).
set -euo pipefail
RECIPE=ablation.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# Paths the user gives are relative to where they are; the defaults to the repository.
DATA_ARG=${1:+$(realpath -m "$1")}
[[ -z ${OUT:-} ]] || OUT=$(realpath -m "$OUT")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-$PWD/runs/ablation}
UPDATES=${UPDATES:-3000}
read -r -a VARIANTS <<< "${VARIANTS:-subword whole_word span span_sbo}"
JOBS=${JOBS:-2}
SEED=${SEED:-1}
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
START=$SECONDS

say() { echo "ablation.sh: $* ($((SECONDS - START))s)"; }

[[ $UPDATES =~ ^[1-9][0-9]*$ ]] || die "UPDATES must be a positive whole number, not '$UPDATES'"
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive whole number, not '$JOBS'"
[[ $SEED =~ ^[0-9]+$ ]] || die "SEED must be a whole number, not '$SEED'"
for v in "${VARIANTS[@]}"; do
  case $v in subword|whole_word|span|span_sbo) ;; *) die "unknown variant '$v' (subword whole_word span span_sbo)" ;; esac
done
use_project_env
# One thread per training: two trainings share the two cores, and the tiny model's matrices are too
# small for threads to pay (docs/training.md).
export OMP_NUM_THREADS=1
mkdir -p "$OUT"

if [[ -n $DATA_ARG ]]; then
  DATA=$DATA_ARG
  [[ -f $DATA/dict.txt && -f $DATA/train.idx && -f $DATA/valid.idx ]] \
    || die "$DATA is not a spanbert-preprocess directory (dict.txt, train and valid .bin/.idx)"
else
  DATA=$OUT/data
  if [[ ! -f $DATA/valid.idx ]]; then
    say "default corpus -> uncased 2,000-piece WordPiece (the demo's) -> $DATA"
    [[ -s $OUT/corpus.txt ]] || run python -m spanbert_preprocess.default_corpus "$OUT/corpus.txt"
    # A tenth held out (the demo holds out a twentieth): more masked spans to judge the variants on.
    run spanbert-preprocess "$OUT/corpus.txt" "${DEFAULT_CORPUS_VOCAB[@]}" --valid-fraction 0.1 \
      --workers "$(nproc --all)" --destdir "$DATA"
  fi
fi

variant_flags() {
  case $1 in
    subword) echo --masking-scheme subword --sbo-weight 0 ;;
    whole_word) echo --masking-scheme whole_word --sbo-weight 0 ;;
    span) echo --masking-scheme span --sbo-weight 0 ;;
    span_sbo) echo --masking-scheme span --sbo-weight 1 ;;
  esac
}

train() {
  local v=$1 dir=$OUT/$1
  rm -rf "$dir" && mkdir -p "$dir"
  # 128-token blocks mask 19 tokens each, so spans of up to 10 words occur whole (the demo's
  # 32-token blocks stop every span at 5 tokens). Otherwise the demo's settings.
  # shellcheck disable=SC2046
  fairseq-train "$DATA" --user-dir "$PWD/spanbert_fairseq" --task span_bert --criterion span_bert \
    --arch spanbert_tiny --cpu $(variant_flags "$v") \
    --tokens-per-sample 128 --batch-size 16 --dropout 0 --attention-dropout 0 \
    --optimizer adam --adam-betas "(0.9, 0.98)" --adam-eps 1e-6 --weight-decay 0.01 --clip-norm 1.0 \
    --lr 3e-3 --lr-scheduler polynomial_decay --warmup-updates 200 \
    --total-num-update "$UPDATES" --max-update "$UPDATES" \
    --save-dir "$dir" --no-epoch-checkpoints --no-save-optimizer-state \
    --validate-interval-updates $(( (UPDATES + 5) / 6 )) \
    --num-workers 0 --seed "$SEED" --log-format json --log-interval $(( (UPDATES + 29) / 30 )) \
    > "$dir/train.log" 2>&1 || { tail -n 20 "$dir/train.log" >&2; echo "see $dir/train.log" >&2; return 1; }
  # Compared at equal updates: the last checkpoint, not the one of the best validation loss.
  rm -f "$dir/checkpoint_best.pt"
}

progress() {  # one line: each variant's last logged update
  local line="" v n
  for v in "${VARIANTS[@]}"; do
    n=$(grep -oE '"num_updates": "[0-9]+"' "$OUT/$v/train.log" 2>/dev/null | tail -n 1 | grep -oE '[0-9]+' || echo 0)
    line+=" $v ${n:-0}/$UPDATES"
  done
  say "updates:$line"
}

say "training ${#VARIANTS[@]} variants x $UPDATES updates, $JOBS at a time (logs: $OUT/VARIANT/train.log)"
pending=("${VARIANTS[@]}")
declare -A running=()  # pid -> variant
last_report=$SECONDS
while (( ${#pending[@]} + ${#running[@]} > 0 )); do
  while (( ${#running[@]} < JOBS && ${#pending[@]} > 0 )); do
    train "${pending[0]}" &
    running[$!]=${pending[0]}
    pending=("${pending[@]:1}")
  done
  sleep 2
  for pid in "${!running[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" || die "training ${running[$pid]} failed"
      say "${running[$pid]} trained"
      unset "running[$pid]"
    fi
  done
  if (( SECONDS - last_report >= 60 )); then progress; last_report=$SECONDS; fi
done

# Every variant on the same masks: span masks (SpanBERT's task) and subword masks (BERT's).
for scheme in span subword; do
  say "spanbert-eval on $scheme masks"
  # From OUT, so that each checkpoint is named by its variant's directory.
  (cd "$OUT" && spanbert-eval "${VARIANTS[@]}" --data "$DATA" --masking-scheme "$scheme" \
     --json "eval_$scheme.json" $([[ $scheme == span ]] && echo --plot accuracy_by_span_length.png) \
     > "eval_$scheme.md")
done
LOGS=()
for v in "${VARIANTS[@]}"; do LOGS+=("$OUT/$v/train.log"); done
python recipes/plot_training_curves.py "$OUT/curves.png" "${LOGS[@]}" --heads mlm

{
  echo "# Masking ablation: spanbert_tiny, ${#VARIANTS[@]} variants x $UPDATES updates"
  echo
  echo "Data: $DATA. Same settings for every variant (batch 16 x 128 tokens, lr 3e-3, dropout 0, seed $SEED);"
  echo "only the masking scheme and --sbo-weight differ. Command: bash recipes/ablation.sh $*"
  echo "(UPDATES=$UPDATES JOBS=$JOBS SEED=$SEED). Machine: $(nproc --all) cores ($(lscpu | sed -n 's/^Model name: *//p')),"
  echo "load average $LOAD_AT_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end;"
  echo "wall time $((SECONDS - START)) s."
  echo
  echo "## On span masks (SpanBERT's task)"
  echo
  cat "$OUT/eval_span.md"
  echo
  echo "## On subword masks (BERT's task)"
  echo
  cat "$OUT/eval_subword.md"
} > "$OUT/ablation.md"
say "done: ${#VARIANTS[@]} variants x $UPDATES updates -> $OUT/ablation.md, $OUT/curves.png, $OUT/accuracy_by_span_length.png"
