#!/usr/bin/env bash
# SpanBERT base (SPEC sections 4-5): 12 layers, 768 hidden. The paper trains only large at its
# stated settings; for base the authors answered in their tracker: the same corpus, a batch 8x
# larger (2048 sequences of 512 tokens), 300k updates, peak lr 5e-4. The rest is the large
# recipe: AdamW, 10k warmup updates then linear decay, clip-norm 1.0, fp16 with loss scaling.
#
#   recipes/pretrain_base.sh DATA [FAIRSEQ-TRAIN ARGS ...]
#
# DATA: spanbert-preprocess's output (dict.txt, train/valid binaries; or shard0..N-1). Extra
# arguments go to fairseq-train last, so they override the settings below. Rerunning the same
# command resumes from SAVE_DIR/checkpoint_last.pt.
# Environment: SAVE_DIR (checkpoints/spanbert_base), GLOBAL_BATCH (2048), BATCH_PER_GPU (32),
# FP16_MODE (fp16 | memory-efficient), MAX_UPDATE (300000), LR (5e-4), WARMUP (10000),
# WEIGHT_DECAY (0.01), SEED (1); launch variables are described in recipes/common.sh.
set -euo pipefail
RECIPE=pretrain_base.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -ge 1 ]] || die "usage: $0 DATA [FAIRSEQ-TRAIN ARGS ...]"
DATA=$(resolve_data "$1")
shift
GLOBAL_BATCH=${GLOBAL_BATCH:-2048}
BATCH_PER_GPU=${BATCH_PER_GPU:-32}  # fits a 32 GB V100 with --fp16 at 512 tokens
MAX_UPDATE=${MAX_UPDATE:-300000}
plan_launch
derive_update_freq
report_apex

TRAIN_ARGS=(
  "$DATA" --user-dir "$(user_dir)" --task span_bert --criterion span_bert --arch spanbert_base
  --tokens-per-sample 512 --batch-size "$BATCH_PER_GPU" --update-freq "$UPDATE_FREQ"
  # fairseq's adam decouples weight decay (AdamW). Weight decay: the paper says 0.1, the authors'
  # released command used 0.01; we follow the command, which produced the published checkpoints.
  --optimizer adam --adam-betas "(0.9, 0.999)" --adam-eps 1e-8 --weight-decay "${WEIGHT_DECAY:-0.01}"
  --lr "${LR:-5e-4}" --lr-scheduler polynomial_decay --power 1 --end-learning-rate 0
  --warmup-updates "${WARMUP:-10000}" --total-num-update "$MAX_UPDATE" --max-update "$MAX_UPDATE"
  --clip-norm 1.0 "$(fp16_flag)" --fp16-init-scale 128
  --dropout 0.1 --attention-dropout 0.1
  --num-workers 2 --seed "${SEED:-1}"
  --save-dir "${SAVE_DIR:-checkpoints/spanbert_base}" --save-interval-updates 10000
  --keep-interval-updates 5 --no-epoch-checkpoints --validate-interval-updates 10000
  --log-format json --log-interval 100
  "$@"
)
note "$WORLD_SIZE GPU(s) ($NNODES node(s) x $GPUS_PER_NODE) x batch $BATCH_PER_GPU x update-freq $UPDATE_FREQ = $GLOBAL_BATCH sequences per update"
launch
