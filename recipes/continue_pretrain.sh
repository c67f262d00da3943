#!/usr/bin/env bash
# Domain-adaptive pretraining: continue SpanBERT pretraining from a released or HuggingFace BERT
# checkpoint on your own text, with the checkpoint's own vocabulary.
#
#   recipes/continue_pretrain.sh CHECKPOINT OUT TEXT [TEXT ...] [-- FAIRSEQ-TRAIN ARGS ...]
#
# CHECKPOINT  a HuggingFace BERT directory (config.json + model.safetensors / pytorch_model.bin),
#             or the authors' fairseq-0.6 SpanBERT model.pt
# OUT         working directory: OUT/model (imported checkpoint), OUT/data (binarized text),
#             OUT/checkpoints (fairseq-train), OUT/hf (the result, as a HuggingFace directory)
# TEXT        raw text: a sentence or paragraph per line, a blank line between documents
# Arguments after `--` go to fairseq-train last, so they override the defaults below
# (e.g. `-- --cpu`, `-- --fp16`, `-- --max-tokens 8192`).
#
# Environment: VOCAB (vocab.txt for a checkpoint that has none beside it; the released SpanBERT
# models use BERT cased's), MAX_UPDATE (10000), LR (1e-4), WARMUP (10% of MAX_UPDATE),
# BATCH_SIZE (32), UPDATE_FREQ (1), TOKENS_PER_SAMPLE (512), VALID_FRACTION (0.01), SEED (1).
set -euo pipefail
RECIPE=continue_pretrain.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -ge 3 ]] || usage "$0 CHECKPOINT OUT TEXT [TEXT ...] [-- FAIRSEQ-TRAIN ARGS ...]"
CHECKPOINT=$1 OUT=$2
shift 2
TEXTS=()
while [[ $# -gt 0 && $1 != "--" ]]; do TEXTS+=("$1"); shift; done
if [[ $# -gt 0 ]]; then shift; fi  # the "--"
EXTRA=("$@")

[[ -e $CHECKPOINT ]] || die "checkpoint not found: $CHECKPOINT"
[[ ${#TEXTS[@]} -gt 0 ]] || die "no training text given"
for f in "${TEXTS[@]}"; do
  [[ -f $f ]] || die "text file not found: $f"
  [[ -s $f ]] || die "text file is empty: $f"
done
[[ -z ${VOCAB:-} || -f ${VOCAB:-} ]] || die "VOCAB file not found: $VOCAB"
for tool in spanbert-import spanbert-preprocess fairseq-train spanbert-export; do
  command -v "$tool" >/dev/null || die "$tool not on PATH: install spanbert_fairseq (pip install -e .) and activate its environment"
done

MAX_UPDATE=${MAX_UPDATE:-10000}
WARMUP=${WARMUP:-$((MAX_UPDATE / 10))}
# fairseq-train's --user-dir: the installed package's directory (found without importing it).
USER_DIR=$(python3 -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("spanbert_fairseq").origin))' 2>/dev/null) \
  || die "python3 cannot find the spanbert_fairseq package"

if [[ -f $OUT/checkpoints/checkpoint_last.pt ]]; then
  # A rerun after a kill or preemption: keep the data and resume the run where it stopped.
  echo "continue_pretrain.sh: resuming from $OUT/checkpoints/checkpoint_last.pt"
  START=()
else
  # 1. The checkpoint as a span_bert checkpoint, with its vocabulary as dict.txt.
  IMPORT_ARGS=("$CHECKPOINT" "$OUT/model")
  if [[ -n ${VOCAB:-} ]]; then IMPORT_ARGS+=(--vocab "$VOCAB"); fi
  run spanbert-import "${IMPORT_ARGS[@]}"

  # 2. The text, tokenized with the checkpoint's vocabulary (so every id means what it meant).
  run spanbert-preprocess --vocab "$OUT/model/vocab.txt" --destdir "$OUT/data" \
    --valid-fraction "${VALID_FRACTION:-0.01}" --seed "${SEED:-1}" --force "${TEXTS[@]}"
  model_vocab=$(wc -l < "$OUT/model/dict.txt")
  data_vocab=$(wc -l < "$OUT/data/dict.txt")
  [[ $model_vocab -eq $data_vocab ]] \
    || die "vocabulary mismatch: $OUT/model/dict.txt has $model_vocab entries, $OUT/data/dict.txt $data_vocab"

  # The imported weights, with a fresh optimizer, schedule, meters and data order.
  START=(--restore-file "$OUT/model/model.pt"
         --reset-optimizer --reset-dataloader --reset-meters --reset-lr-scheduler)
fi
read -r -a ARCH_FLAGS < "$OUT/model/train_args.txt"

# 3. Continued pretraining.
run fairseq-train "$OUT/data" --user-dir "$USER_DIR" \
  --task span_bert --criterion span_bert "${ARCH_FLAGS[@]}" "${START[@]}" \
  --tokens-per-sample "${TOKENS_PER_SAMPLE:-512}" --batch-size "${BATCH_SIZE:-32}" \
  --update-freq "${UPDATE_FREQ:-1}" \
  --optimizer adam --adam-betas "(0.9, 0.999)" --adam-eps 1e-8 --weight-decay 0.01 \
  --clip-norm 1.0 --lr "${LR:-1e-4}" --lr-scheduler polynomial_decay \
  --warmup-updates "$WARMUP" --total-num-update "$MAX_UPDATE" --max-update "$MAX_UPDATE" \
  --save-dir "$OUT/checkpoints" --no-epoch-checkpoints --seed "${SEED:-1}" \
  --log-format simple --log-interval 100 \
  "${EXTRA[@]}"

# 4. The result for fine-tuning with transformers (SBO head kept beside it for a later import).
run spanbert-export "$OUT/checkpoints/checkpoint_last.pt" "$OUT/hf"

echo "continue_pretrain.sh: $CHECKPOINT continued on ${#TEXTS[@]} text file(s) for $MAX_UPDATE updates" \
  "-> $OUT/checkpoints/checkpoint_last.pt (fairseq), $OUT/hf (HuggingFace)"
