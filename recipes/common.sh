# Shared by the recipes: messages and exit statuses, the CPU recipes' environment and data, and
# for pretrain_base.sh / pretrain_large.sh checks, batch arithmetic and launchers.
# Sourced, not run: the caller sets RECIPE (its name in messages) first.
#
# Launch, chosen by LAUNCHER (default: torchrun, or slurm inside a SLURM allocation of >1 task):
#   one node      GPUS_PER_NODE (default: all visible)
#   many nodes    NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT (static torchrun rendezvous), or
#                 RDZV_ENDPOINT=host:port [RDZV_ID] (c10d rendezvous; ranks assigned by torchrun);
#                 run the same command on every node
#   SLURM         inside sbatch/salloc: one `srun` task per GPU; nodes and ranks from SLURM
# Stopping: STOP_LEAD_S (default 180) seconds are what a stop request leaves training to finish its
#   update and save checkpoint_last.pt (docs/reliability.md, "Signals"): srun asks SLURM for SIGUSR1
#   that long before the time limit (--signal USR1@STOP_LEAD_S), and torchrun forwards SIGUSR1 as well
#   as SIGTERM to its workers and waits that long before its SIGKILL (its default: 30 s).
# DRY_RUN=1 prints the command without checking GPUs or running it.

# Exit status as the console scripts: 1 for an input the user can fix, 2 for a wrong command line.
die() { echo "$RECIPE: error: $*" >&2; exit 1; }
usage() { echo "$RECIPE: usage: $*" >&2; exit 2; }
note() { echo "$RECIPE: $*" >&2; }
run() { echo "+ $(printf '%q ' "$@")"; "$@"; }

# The CPU recipes (demo.sh, ablation.sh), from the repository root: the one set-up, then its tools.
use_project_env() {
  bash scripts/setup.sh
  export PATH="${SPANBERT_VENV:-$PWD/.venv}/bin:$PATH"
}
# Their vocabulary for the embedded default corpus: small and uncased, as the corpus is 2 MB and
# each piece is then seen often enough to learn (docs/training.md, "The demo's settings").
DEFAULT_CORPUS_VOCAB=(--train-wordpiece 2000 --lowercase)

# DATA is a directory with dict.txt + train.{bin,idx} + valid.{bin,idx}, or one with shard0..N-1.
# Prints fairseq's data argument (colon-separated shards).
resolve_data() {
  local data=$1
  [[ -d $data ]] || die "data directory not found: $data (make it with spanbert-preprocess)"
  if [[ -d $data/shard0 ]]; then
    local shards=() i=0
    while [[ -d $data/shard$i ]]; do shards+=("$data/shard$i"); i=$((i + 1)); done
    [[ -f $data/shard0/dict.txt ]] || die "vocabulary missing: $data/shard0/dict.txt"
    [[ -f $data/shard0/valid.idx ]] || die "validation split missing: $data/shard0/valid.{bin,idx}"
    for s in "${shards[@]}"; do
      [[ -f $s/train.bin && -f $s/train.idx ]] || die "training split missing: $s/train.{bin,idx}"
    done
    (IFS=:; echo "${shards[*]}")
  else
    [[ -f $data/dict.txt ]] || die "vocabulary missing: $data/dict.txt (spanbert-preprocess writes it)"
    [[ -f $data/train.bin && -f $data/train.idx ]] || die "training split missing: $data/train.{bin,idx}"
    [[ -f $data/valid.bin && -f $data/valid.idx ]] || die "validation split missing: $data/valid.{bin,idx}"
    echo "$data"
  fi
}

visible_gpus() {
  if command -v nvidia-smi >/dev/null; then nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true; else echo 0; fi
}

# Sets LAUNCHER, NNODES, GPUS_PER_NODE, WORLD_SIZE.
plan_launch() {
  if [[ -z ${LAUNCHER:-} ]]; then
    LAUNCHER=torchrun
    if [[ -n ${SLURM_JOB_ID:-} && ${SLURM_NTASKS:-1} -gt 1 ]]; then LAUNCHER=slurm; fi
  fi
  case $LAUNCHER in
    torchrun)
      NNODES=${NNODES:-1}
      [[ ${DRY_RUN:-0} == 1 ]] || command -v torchrun >/dev/null \
        || die "torchrun not on PATH: activate the environment (source .venv/bin/activate)" ;;
    slurm)
      [[ -n ${SLURM_JOB_ID:-} ]] || die "LAUNCHER=slurm outside a SLURM allocation (run it from sbatch or salloc)"
      NNODES=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}} ;;
    *) die "LAUNCHER must be torchrun or slurm, not '$LAUNCHER'" ;;
  esac
  if [[ ${DRY_RUN:-0} == 1 ]]; then
    GPUS_PER_NODE=${GPUS_PER_NODE:-8}
  else
    local found
    found=$(visible_gpus)
    [[ $found -gt 0 ]] || die "no GPU visible (nvidia-smi -L lists none); pretraining needs CUDA GPUs"
    GPUS_PER_NODE=${GPUS_PER_NODE:-$found}
    [[ $GPUS_PER_NODE -le $found ]] || die "GPUS_PER_NODE=$GPUS_PER_NODE but only $found GPU(s) visible on $(hostname)"
  fi
  WORLD_SIZE=$((NNODES * GPUS_PER_NODE))
}

# The global batch is fixed; --update-freq makes up what the GPUs do not hold at once.
derive_update_freq() {
  local per_update=$((WORLD_SIZE * BATCH_PER_GPU))
  (( GLOBAL_BATCH % per_update == 0 )) || die "GLOBAL_BATCH=$GLOBAL_BATCH is not a multiple of" \
    "$WORLD_SIZE GPUs x BATCH_PER_GPU=$BATCH_PER_GPU; change BATCH_PER_GPU or the GPU count"
  UPDATE_FREQ=$((GLOBAL_BATCH / per_update))
}

fp16_flag() {
  case ${FP16_MODE:-fp16} in
    fp16) echo --fp16 ;;  # fp32 master weights: the authors' setting
    memory-efficient) echo --memory-efficient-fp16 ;;  # fp16 weights and Adam state: less memory
    *) die "FP16_MODE must be fp16 or memory-efficient, not '$FP16_MODE'" ;;
  esac
}

report_apex() {
  if python3 -c "import apex" 2>/dev/null; then
    note "apex found: fairseq uses its fused LayerNorm and Adam"
  else
    note "apex not installed: PyTorch kernels (install NVIDIA apex for fused LayerNorm/Adam)"
  fi
}

# Prints the full command, then runs it (unless DRY_RUN=1).
launch() {
  local cmd lead=${STOP_LEAD_S:-180}
  [[ $lead =~ ^[0-9]+$ && $lead -gt 0 ]] || die "STOP_LEAD_S must be a number of seconds, not '$lead'"
  case $LAUNCHER in
    torchrun)
      # torchrun's own settings (ignored by a torchrun too old to know them): forward SIGUSR1 instead
      # of dying of it, and give the workers the lead to save before the SIGKILL.
      export PET_SIGNALS_TO_HANDLE=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 TORCH_ELASTIC_SHUTDOWN_TIMEOUT=$lead
      note "torchrun forwards SIGTERM and SIGUSR1 to the workers and waits ${lead} s for checkpoint_last.pt" \
        "(PET_SIGNALS_TO_HANDLE=$PET_SIGNALS_TO_HANDLE TORCH_ELASTIC_SHUTDOWN_TIMEOUT=$lead)"
      cmd=(torchrun --nproc-per-node "$GPUS_PER_NODE" --nnodes "$NNODES")
      if [[ -n ${RDZV_ENDPOINT:-} ]]; then
        cmd+=(--rdzv-backend c10d --rdzv-endpoint "$RDZV_ENDPOINT" --rdzv-id "${RDZV_ID:-spanbert}")
      elif [[ $NNODES -gt 1 ]]; then
        [[ -n ${MASTER_ADDR:-} && -n ${NODE_RANK:-} ]] || die "NNODES=$NNODES needs MASTER_ADDR and NODE_RANK (or RDZV_ENDPOINT)"
        cmd+=(--node-rank "$NODE_RANK" --master-addr "$MASTER_ADDR" --master-port "${MASTER_PORT:-29500}")
      else
        cmd+=(--standalone)
      fi
      cmd+=(-m fairseq_cli.train "${TRAIN_ARGS[@]}") ;;
    slurm)
      cmd=(srun --nodes "$NNODES" --ntasks-per-node "$GPUS_PER_NODE" --ntasks "$WORLD_SIZE" --signal "USR1@$lead"
           python3 -m fairseq_cli.train "${TRAIN_ARGS[@]}"
           --distributed-world-size "$WORLD_SIZE" --distributed-port "${MASTER_PORT:-29500}") ;;
  esac
  echo "+ $(printf '%q ' "${cmd[@]}")"
  if [[ ${DRY_RUN:-0} == 1 ]]; then return 0; fi
  exec "${cmd[@]}"
}

user_dir() {
  python3 -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("spanbert_fairseq").origin))' 2>/dev/null \
    || die "python3 cannot import spanbert_fairseq: run bash scripts/setup.sh and activate .venv"
}

# The paper's pretraining run (docs/training.md, "Recipes") for one architecture; the two recipes differ only in
# the arguments: ARCH GLOBAL_BATCH BATCH_PER_GPU MAX_UPDATE LR, then DATA [FAIRSEQ-TRAIN ARGS ...].
pretrain() {
  local arch=$1
  GLOBAL_BATCH=${GLOBAL_BATCH:-$2}
  BATCH_PER_GPU=${BATCH_PER_GPU:-$3}
  MAX_UPDATE=${MAX_UPDATE:-$4}
  local lr=${LR:-$5}
  shift 5
  [[ $# -ge 1 ]] || usage "$RECIPE DATA [FAIRSEQ-TRAIN ARGS ...]"
  local data
  data=$(resolve_data "$1")
  shift
  plan_launch
  derive_update_freq
  report_apex

  TRAIN_ARGS=(
    "$data" --user-dir "$(user_dir)" --task span_bert --criterion span_bert --arch "$arch"
    --tokens-per-sample 512 --batch-size "$BATCH_PER_GPU" --update-freq "$UPDATE_FREQ"
    # fairseq's adam decouples weight decay (AdamW). Weight decay: the paper says 0.1, the authors'
    # released command used 0.01; we follow the command, which produced the published checkpoints.
    --optimizer adam --adam-betas "(0.9, 0.999)" --adam-eps 1e-8 --weight-decay "${WEIGHT_DECAY:-0.01}"
    --lr "$lr" --lr-scheduler polynomial_decay --power 1 --end-learning-rate 0
    --warmup-updates "${WARMUP:-10000}" --total-num-update "$MAX_UPDATE" --max-update "$MAX_UPDATE"
    --clip-norm 1.0 "$(fp16_flag)" --fp16-init-scale 128
    --dropout 0.1 --attention-dropout 0.1
    --num-workers 2 --seed "${SEED:-1}"
    --save-dir "${SAVE_DIR:-checkpoints/$arch}" --save-interval-updates 10000
    --keep-interval-updates 5 --no-epoch-checkpoints --validate-interval-updates 10000
    --log-format json --log-interval 100
    "$@"
  )
  note "$WORLD_SIZE GPU(s) ($NNODES node(s) x $GPUS_PER_NODE) x batch $BATCH_PER_GPU x update-freq $UPDATE_FREQ = $GLOBAL_BATCH sequences per update"
  launch
}
