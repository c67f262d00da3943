#!/usr/bin/env bash
# Fine-tune a span_bert checkpoint on a GLUE task with fairseq's own sentence_prediction task, from
# the task's TSV files as distributed to a dev accuracy (docs/finetuning.md, "Classification").
#
#   recipes/finetune_glue.sh TASK_DIR PRETRAINED [OUT] [-- FAIRSEQ-TRAIN ARGS ...]
#
# TASK_DIR    a GLUE task directory holding train.tsv and dev.tsv (RTE, MRPC, SST-2, QNLI, WNLI)
# PRETRAINED  a fairseq-train checkpoint (.pt, or its save directory) or spanbert-import's output
#             directory; its vocabulary is found beside it or in the data it was trained on
# OUT         working directory (default: ./finetune-TASK): OUT/data (binaries), OUT/checkpoints,
#             OUT/train.log
# Arguments after `--` go to fairseq-train last (e.g. `-- --fp16`, `-- --max-update 20`).
#
# Environment, with the SpanBERT authors' settings for small GLUE tasks such as RTE as defaults:
# EPOCHS (10), LR (2e-5), BATCH (32), MAX_LEN (128 tokens, [CLS] and [SEP]s included), WARMUP
# (10% of the updates), SEED (1).
set -euo pipefail
RECIPE=finetune_glue.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -ge 2 ]] || usage "$0 TASK_DIR PRETRAINED [OUT] [-- FAIRSEQ-TRAIN ARGS ...]"
TASK_DIR=$1 PRETRAINED=$2
shift 2
OUT=finetune-$(basename "$TASK_DIR")
if [[ $# -gt 0 && $1 != "--" ]]; then OUT=$1; shift; fi
if [[ $# -gt 0 ]]; then shift; fi  # the "--"
EXTRA=("$@")
EPOCHS=${EPOCHS:-10} LR=${LR:-2e-5} BATCH=${BATCH:-32} MAX_LEN=${MAX_LEN:-128} SEED=${SEED:-1}

[[ -f $TASK_DIR/train.tsv && -f $TASK_DIR/dev.tsv ]] || die "$TASK_DIR: no train.tsv and dev.tsv (a GLUE task directory)"
[[ -e $PRETRAINED ]] || die "pretrained checkpoint not found: $PRETRAINED"
for tool in spanbert-glue fairseq-train; do
  command -v "$tool" >/dev/null || die "$tool not on PATH: run bash scripts/setup.sh and activate .venv"
done
USER_DIR=$(user_dir)
START=$SECONDS

# The checkpoint file, its vocabulary and the flags of its architecture, one per line.
mapfile -t FOUND < <(python3 - "$PRETRAINED" <<'EOF'
import sys
from spanbert_fairseq.checkpoint_io import find_vocabulary_dir, load_span_bert_checkpoint, vocabulary_file
from spanbert_fairseq.hub.loading import find_checkpoint
from spanbert_fairseq.interop.span_bert_checkpoint import fine_tuning_arch_flags, model_args_of
from spanbert_text.errors import UserInputError

try:
    path = find_checkpoint(sys.argv[1])
    cfg = load_span_bert_checkpoint(path)["cfg"]
    vocab = vocabulary_file(find_vocabulary_dir(path, cfg, how="put the dict.txt it was trained with beside it"))
except UserInputError as e:
    sys.exit(f"finetune_glue.sh: error: {e}")
print(path, vocab, " ".join(fine_tuning_arch_flags(model_args_of(cfg))), sep="\n")
EOF
) || exit 1
[[ ${#FOUND[@]} -eq 3 ]] || exit 1
CHECKPOINT=${FOUND[0]} VOCAB=${FOUND[1]}
read -r -a ARCH_FLAGS <<< "${FOUND[2]}"

# 1. The TSVs as binaries, tokenized with the checkpoint's vocabulary.
SUMMARY=$(run spanbert-glue "$TASK_DIR" --vocab "$VOCAB" --destdir "$OUT/data" --max-len "$MAX_LEN" --force | tee /dev/stderr | tail -1)
NUM_CLASSES=$(grep -o -- '--num-classes [0-9]*' <<< "$SUMMARY" | cut -d' ' -f2)
INIT_TOKEN=$(grep -o -- '--init-token [0-9]*' <<< "$SUMMARY" | cut -d' ' -f2)
TRAIN_ROWS=$(($(wc -l < "$TASK_DIR/train.tsv") - 1))
UPDATES=$((EPOCHS * ((TRAIN_ROWS + BATCH - 1) / BATCH)))
WARMUP=${WARMUP:-$((UPDATES / 10))}
DEVICE=()
[[ $(visible_gpus) -gt 0 ]] || DEVICE=(--cpu)

# 2. Fine-tuning: the pretrained encoder, a fresh classification head, a fresh optimizer and schedule.
rm -rf "$OUT/checkpoints"
mkdir -p "$OUT"
if ! run fairseq-train "$OUT/data" --user-dir "$USER_DIR" \
  --task sentence_prediction --criterion sentence_prediction \
  --num-classes "$NUM_CLASSES" --init-token "$INIT_TOKEN" "${ARCH_FLAGS[@]}" \
  --restore-file "$CHECKPOINT" --reset-optimizer --reset-dataloader --reset-meters --reset-lr-scheduler \
  --batch-size "$BATCH" --optimizer adam --adam-betas "(0.9, 0.999)" --adam-eps 1e-6 --weight-decay 0.01 \
  --clip-norm 1.0 --lr "$LR" --lr-scheduler polynomial_decay --warmup-updates "$WARMUP" \
  --total-num-update "$UPDATES" --max-epoch "$EPOCHS" \
  --best-checkpoint-metric accuracy --maximize-best-checkpoint-metric \
  --save-dir "$OUT/checkpoints" --no-epoch-checkpoints --seed "$SEED" --num-workers 0 \
  --log-format simple --log-interval 10 "${DEVICE[@]}" "${EXTRA[@]}" 2>&1 | tee "$OUT/train.log"; then
  die "fairseq-train failed (log: $OUT/train.log)"
fi

# The best dev accuracy: fairseq logs best_accuracy from the second validation on.
BEST=$({ grep -o 'best_accuracy [0-9.]*' "$OUT/train.log" || true; } | tail -1 | cut -d' ' -f2)
[[ -n $BEST ]] || BEST=$({ grep "valid on 'valid' subset" "$OUT/train.log" || true; } \
  | { grep -o '| accuracy [0-9.]*' || true; } | tail -1 | cut -d' ' -f3)
[[ -n $BEST ]] || die "no dev accuracy in $OUT/train.log"
echo "finetune_glue.sh: $(basename "$TASK_DIR") dev accuracy $BEST (best of $EPOCHS epochs, $UPDATES updates)" \
  "from $CHECKPOINT -> $OUT/checkpoints/checkpoint_best.pt (data $OUT/data, log $OUT/train.log), $((SECONDS - START)) s"
