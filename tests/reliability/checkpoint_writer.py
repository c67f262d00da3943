"""Drive fairseq 0.12's own `checkpoint_utils.save_checkpoint` without a model, as a script.

    python checkpoint_writer.py SAVE_DIR [--plugin] UPDATE [UPDATE ...]

saves, for each UPDATE, the checkpoints fairseq would save mid-epoch with `--save-interval-updates 1`
(`checkpoint_1_<UPDATE>.pt`, then a copy to `checkpoint_last.pt`). The payload is a few MB of
parameters filled with the update number, so a reader can tell which save a file holds.
With --plugin, spanbert_fairseq is imported first (its checkpoint patches apply). A fault from
`fault_injection` may be armed through the environment.
"""

import sys
from types import SimpleNamespace

import fault_injection
import torch

PAYLOAD_FLOATS = 1 << 20


class _FakeTrainer:
    data_parallel_rank = 0
    should_save_checkpoint_on_current_rank = True
    always_call_state_dict_during_save_checkpoint = False
    checkpoint_suffix = ""

    def __init__(self):
        self.num_updates = 0
        self.task = SimpleNamespace()

    def consolidate_optimizer(self):
        pass

    def get_num_updates(self):
        return self.num_updates

    def save_checkpoint(self, filename, extra_state):
        from fairseq import checkpoint_utils

        state = {
            "model": {"weight": torch.full((PAYLOAD_FLOATS,), float(self.num_updates))},
            "extra_state": dict(extra_state, num_updates=self.num_updates),
        }
        checkpoint_utils.torch_persistent_save(state, filename)
        return filename


class _MidEpochIterator:
    epoch = 1

    def end_of_epoch(self):
        return False

    def state_dict(self):
        return {"epoch": 1, "iterations_in_epoch": 0}


def main(argv):
    save_dir, rest = argv[0], argv[1:]
    if "--plugin" in rest:
        rest.remove("--plugin")
        from spanbert_fairseq import patches

        patches.apply("train")  # what fairseq-train gets: the checkpoint patches
    from fairseq import checkpoint_utils
    from fairseq.dataclass.configs import CheckpointConfig

    fault_injection.install_from_env()
    cfg = CheckpointConfig(save_dir=save_dir, save_interval_updates=1)
    trainer = _FakeTrainer()
    for update in map(int, rest):
        trainer.num_updates = update
        checkpoint_utils.save_checkpoint(cfg, trainer, _MidEpochIterator(), None)


if __name__ == "__main__":
    main(sys.argv[1:])
