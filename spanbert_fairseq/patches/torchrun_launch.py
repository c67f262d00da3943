"""Let fairseq 0.12 take its ranks from torchrun, on CPU too and across nodes.

Defect (fairseq/distributed/utils.py: infer_init_method): fairseq reads torchrun's environment only
when --distributed-world-size > 1, whose default is the number of GPUs (1 on a CPU machine), and
then sets device_id = RANK % cuda.device_count(), which divides by zero without GPUs.
Fix: under torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT set) world size and rank come
from the environment and the device from LOCAL_RANK, so `torchrun ... fairseq-train ...` needs no
extra distributed flags.
"""

import os

from .wrapping import wrap

TORCHRUN_ENVIRONMENT = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK")


def _make_infer_init_method(original):
    def infer_init_method(cfg, force_distributed=False):
        if cfg.distributed_init_method is None and all(k in os.environ for k in TORCHRUN_ENVIRONMENT):
            cfg.distributed_init_method = "env://"
            cfg.distributed_world_size = int(os.environ["WORLD_SIZE"])
            cfg.distributed_rank = int(os.environ["RANK"])
            cfg.device_id = int(os.environ["LOCAL_RANK"])
            cfg.distributed_no_spawn = True  # torchrun started the processes
            return
        original(cfg, force_distributed)

    return infer_init_method


def install():
    from fairseq.distributed import utils as distributed_utils

    wrap(distributed_utils, "infer_init_method", _make_infer_init_method)
