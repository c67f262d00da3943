"""--compile under fairseq-train: a compiled spanbert_tiny run trains, its checkpoints keep the eager
model's state-dict keys, and a compiled run stopped at a checkpoint and resumed ends bitwise equal to
the uninterrupted compiled run (dropout on: the compiled kernels draw their random numbers from the
generator fairseq reseeds every update, so a resume replays them).
"""

import math
import shutil

import pytest
from fairseq import checkpoint_utils
from train_harness import differing_tensors, run_to_end, train_command

pytestmark = pytest.mark.slow

UPDATES, STOP = 8, 4  # a checkpoint every 4 updates (train_command)


def training_state(path):
    state = checkpoint_utils.load_checkpoint_to_cpu(str(path))
    return {"model": state["model"], "optimizer": state["last_optimizer_state"]}


def losses(launch):
    return [float(line.split("loss=")[1].split(",")[0]) for line in launch.lines if "train_inner" in line]


def test_compiled_run_resumes_bitwise_with_the_eager_state_dict_keys(tiny_data_dir, tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    launch = run_to_end(train_command(tiny_data_dir, whole, UPDATES, extra=["--compile"]))
    assert launch.proc.returncode == 0, launch.output[-3000:]
    assert "--compile: BertBody, MlmHead, SboHead compiled in place" in launch.output
    assert len(losses(launch)) == UPDATES and all(math.isfinite(x) for x in losses(launch))

    # Resuming from the checkpoint at STOP is what a stopped or killed run does on its restart.
    resumed.mkdir()
    shutil.copyfile(whole / f"checkpoint_1_{STOP}.pt", resumed / "checkpoint_last.pt")
    second = run_to_end(train_command(tiny_data_dir, resumed, UPDATES, extra=["--compile"]))
    assert second.proc.returncode == 0, second.output[-3000:]
    assert f"(epoch 1 @ {STOP} updates)" in second.output, second.output[-3000:]

    reference = training_state(whole / "checkpoint_last.pt")
    diff = differing_tensors(reference, training_state(resumed / "checkpoint_last.pt"))
    assert not diff, f"resumed at {STOP}: final state differs in {len(diff)} tensors, e.g. {diff[:3]}"
    assert not [key for key in reference["model"] if "_orig_mod" in key]
