#!/usr/bin/env bash
# SpanBERT large as in the paper (docs/training.md, "Recipes"): 24 layers, 1024 hidden; 256 sequences of 512
# tokens per update, 2.4M updates, AdamW, peak lr 1e-4 after 10k warmup updates, linear decay,
# clip-norm 1.0, fp16 with dynamic loss scaling. The authors ran it on 32 V100s for 15 days.
#
#   recipes/pretrain_large.sh DATA [FAIRSEQ-TRAIN ARGS ...]
#
# DATA: spanbert-preprocess's output (dict.txt, train/valid binaries; or shard0..N-1). Extra
# arguments go to fairseq-train last, so they override the settings below. Rerunning the same
# command resumes from SAVE_DIR/checkpoint_last.pt.
# Environment: SAVE_DIR (checkpoints/spanbert_large), GLOBAL_BATCH (256), BATCH_PER_GPU (8),
# FP16_MODE (fp16 | memory-efficient), MAX_UPDATE (2400000), LR (1e-4), WARMUP (10000),
# WEIGHT_DECAY (0.01), SEED (1); launch variables are described in recipes/common.sh.
set -euo pipefail
RECIPE=pretrain_large.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# BATCH_PER_GPU fits a 32 GB V100 with --fp16 at 512 tokens.
pretrain spanbert_large 256 8 2400000 1e-4 "$@"
