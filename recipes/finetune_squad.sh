#!/usr/bin/env bash
# Extractive QA: fine-tune a span_bert checkpoint on SQuAD (v1.1 or v2.0) with the span_qa task and
# score it on dev with the official metric (docs/finetuning.md, "Extractive QA (SQuAD)").
#
#   bash recipes/finetune_squad.sh PRETRAINED TRAIN_JSON DEV_JSON [OUT] [-- FAIRSEQ-TRAIN ARGS ...]
#
# PRETRAINED  a fairseq-train checkpoint (or its save directory), or spanbert-import's output
#             directory (model.pt with dict.txt / vocab.txt beside it)
# TRAIN_JSON, DEV_JSON  SQuAD files as distributed (INPUT_FORMAT=mrqa: MRQA's .jsonl)
# OUT         (default squad_out) OUT/data (the two files and the vocabulary), OUT/checkpoints/,
#             OUT/train.log, OUT/predictions.json (question id -> answer), OUT/eval.json
# Arguments after `--` go to fairseq-train last (e.g. `-- --fp16`, `-- --update-freq 2`).
#
# Environment, the authors' SQuAD settings by default: EPOCHS (4), LR (2e-5), BATCH (32),
# MAX_LEN (512), STRIDE (128), WARMUP_RATIO (0.1), SEED (1), NUM_WORKERS (2), INPUT_FORMAT (squad).
# Without a visible GPU fairseq-train runs with --cpu. A rerun resumes OUT/checkpoints/checkpoint_last.pt.
set -euo pipefail
RECIPE=finetune_squad.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

ARGS=()
while [[ $# -gt 0 && $1 != "--" ]]; do ARGS+=("$1"); shift; done
if [[ $# -gt 0 ]]; then shift; fi  # the "--"
EXTRA=("$@")
[[ ${#ARGS[@]} -ge 3 && ${#ARGS[@]} -le 4 ]] || usage "$0 PRETRAINED TRAIN_JSON DEV_JSON [OUT] [-- FAIRSEQ-TRAIN ARGS ...]"
PRETRAINED=${ARGS[0]} TRAIN_JSON=${ARGS[1]} DEV_JSON=${ARGS[2]} OUT=${ARGS[3]:-squad_out}
[[ -e $PRETRAINED ]] || die "checkpoint not found: $PRETRAINED"
for f in "$TRAIN_JSON" "$DEV_JSON"; do [[ -f $f ]] || die "SQuAD file not found: $f"; done
command -v fairseq-train >/dev/null || die "fairseq-train not on PATH: install spanbert_fairseq (pip install -e .) and activate its environment"

EPOCHS=${EPOCHS:-4} LR=${LR:-2e-5} BATCH=${BATCH:-32} MAX_LEN=${MAX_LEN:-512} STRIDE=${STRIDE:-128}
FORMAT=${INPUT_FORMAT:-squad}
SUFFIX=.json; [[ $FORMAT == mrqa ]] && SUFFIX=.jsonl
START=$SECONDS
USER_DIR=$(user_dir)

# The checkpoint, its vocabulary, its model flags, the training windows and updates.
mapfile -t PLAN < <(python3 "$HERE/squad_plan.py" "$PRETRAINED" "$TRAIN_JSON" "$MAX_LEN" "$STRIDE" "$BATCH" "$EPOCHS" "$FORMAT") \
  || exit 1
[[ ${#PLAN[@]} -eq 5 ]] || exit 1  # squad_plan.py printed its own error line
CHECKPOINT=${PLAN[0]} VOCAB_DIR=${PLAN[1]} WINDOWS=${PLAN[3]} UPDATES=${PLAN[4]}
read -r -a ARCH_FLAGS <<< "${PLAN[2]}"
WARMUP=$(python3 -c "print(int($UPDATES * ${WARMUP_RATIO:-0.1}))")
note "$CHECKPOINT: $WINDOWS training windows, $EPOCHS epochs of batch $BATCH = $UPDATES updates ($WARMUP warm-up)"

# OUT/data: the two files as the task reads them, with the vocabulary beside them (the hub finds it there).
mkdir -p "$OUT/data"
ln -sf "$(realpath "$TRAIN_JSON")" "$OUT/data/train$SUFFIX"
ln -sf "$(realpath "$DEV_JSON")" "$OUT/data/valid$SUFFIX"
for f in dict.txt vocab.txt tokenizer.json spm.model; do
  if [[ -f $VOCAB_DIR/$f ]]; then cp "$VOCAB_DIR/$f" "$OUT/data/$f"; fi
done

if [[ -f $OUT/checkpoints/checkpoint_last.pt ]]; then
  note "resuming from $OUT/checkpoints/checkpoint_last.pt"
  RESTORE=()
else
  RESTORE=(--restore-file "$(realpath "$CHECKPOINT")" --reset-optimizer --reset-dataloader --reset-meters
           --reset-lr-scheduler)
fi
DEVICE=()
[[ $(visible_gpus) -gt 0 ]] || DEVICE=(--cpu)

# Adam with decoupled weight decay 0.01, linear warm-up and decay, dropout 0.1: the authors' run_squad.py.
run fairseq-train "$(realpath "$OUT/data")" --user-dir "$USER_DIR" --task span_qa --criterion span_qa \
  "${ARCH_FLAGS[@]}" "${RESTORE[@]}" --input-format "$FORMAT" \
  --max-seq-length "$MAX_LEN" --doc-stride "$STRIDE" --batch-size "$BATCH" --required-batch-size-multiple 1 \
  --optimizer adam --adam-betas "(0.9, 0.999)" --adam-eps 1e-8 --weight-decay 0.01 --clip-norm 1.0 \
  --lr "$LR" --lr-scheduler polynomial_decay --warmup-updates "$WARMUP" --total-num-update "$UPDATES" \
  --max-epoch "$EPOCHS" --dropout 0.1 --attention-dropout 0.1 --seed "${SEED:-1}" \
  --num-workers "${NUM_WORKERS:-2}" --save-dir "$OUT/checkpoints" --no-epoch-checkpoints \
  --best-checkpoint-metric f1 --maximize-best-checkpoint-metric \
  --log-format simple --log-interval 50 "${DEVICE[@]}" "${EXTRA[@]}" 2>&1 | tee "$OUT/train.log"
[[ ${PIPESTATUS[0]} -eq 0 ]] || die "fairseq-train failed; see $OUT/train.log"

# The best checkpoint on dev: predictions in the official format, and the official scores.
run python3 -m spanbert_fairseq.evaluation.squad "$OUT/checkpoints" "$DEV_JSON" "$OUT" \
  --input-format "$FORMAT" --vocab-dir "$OUT/data"
python3 - "$OUT/eval.json" "$OUT" $((SECONDS - START)) <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
extra = f", best_f1 {summary['best_f1']:.2f} at threshold {summary['best_f1_thresh']:.3f}" if "best_f1" in summary else ""
print(f"finetune_squad.sh: dev exact_match {summary['exact_match']:.2f}, f1 {summary['f1']:.2f}{extra} "
      f"({summary['total']} questions); checkpoints in {sys.argv[2]}/checkpoints, predictions.json and eval.json "
      f"in {sys.argv[2]} ({sys.argv[3]} s)")
PY
