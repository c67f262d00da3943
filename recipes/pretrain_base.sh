#!/usr/bin/env bash
# SpanBERT base (docs/training.md, "Recipes"): 12 layers, 768 hidden. The paper trains only large at its
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
# BATCH_PER_GPU fits a 32 GB V100 with --fp16 at 512 tokens.
pretrain spanbert_base 2048 32 300000 5e-4 "$@"
