"""recipes/pretrain_{base,large}.sh: the command they print, and their fail-fast checks."""

import os
import shlex
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def recipe(name, data, env=(), extra=()):
    environment = {**os.environ, "PATH": f"{REPO_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", **dict(env)}
    return subprocess.run(["bash", str(REPO_ROOT / "recipes" / name), str(data), *extra],
                          capture_output=True, text=True, env=environment, timeout=60)


@pytest.fixture
def data_dir(tmp_path):
    """The files a data directory must hold (the recipes check presence, not contents)."""
    for name in ("dict.txt", "train.bin", "train.idx", "valid.bin", "valid.idx"):
        (tmp_path / name).write_text("")
    return tmp_path


def printed_command(result):
    line = next(line for line in result.stdout.splitlines() if line.startswith("+ "))
    return shlex.split(line[2:])


def flag(command, name):
    return command[command.index(name) + 1]


@pytest.mark.parametrize("name,arch,lr,global_batch", [
    ("pretrain_large.sh", "spanbert_large", "1e-4", 256),
    ("pretrain_base.sh", "spanbert_base", "5e-4", 2048),
])
def test_paper_settings_and_update_freq_from_gpu_count(data_dir, name, arch, lr, global_batch):
    result = recipe(name, data_dir, {"DRY_RUN": "1", "GPUS_PER_NODE": "8", "BATCH_PER_GPU": "8"})
    assert result.returncode == 0, result.stderr
    command = printed_command(result)
    assert command[:2] == ["torchrun", "--nproc-per-node"] and flag(command, "--nproc-per-node") == "8"
    assert flag(command, "--arch") == arch and flag(command, "--lr") == lr
    assert int(flag(command, "--update-freq")) * 8 * 8 == global_batch
    assert flag(command, "--tokens-per-sample") == "512" and flag(command, "--clip-norm") == "1.0"
    assert flag(command, "--adam-betas") == "(0.9, 0.999)" and "--fp16" in command


def test_multi_node_torchrun_and_slurm(data_dir):
    static = recipe("pretrain_large.sh", data_dir, {"DRY_RUN": "1", "GPUS_PER_NODE": "8", "NNODES": "4",
                                                     "NODE_RANK": "2", "MASTER_ADDR": "10.1.2.3"})
    command = printed_command(static)
    assert flag(command, "--nnodes") == "4" and flag(command, "--node-rank") == "2"
    assert flag(command, "--master-addr") == "10.1.2.3" and flag(command, "--update-freq") == "1"
    rdzv = printed_command(recipe("pretrain_large.sh", data_dir, {
        "DRY_RUN": "1", "GPUS_PER_NODE": "4", "NNODES": "2", "RDZV_ENDPOINT": "head:29400"}))
    assert flag(rdzv, "--rdzv-endpoint") == "head:29400" and flag(rdzv, "--update-freq") == "4"
    slurm = printed_command(recipe("pretrain_base.sh", data_dir, {
        "DRY_RUN": "1", "GPUS_PER_NODE": "8", "SLURM_JOB_ID": "1", "SLURM_NTASKS": "16",
        "SLURM_JOB_NUM_NODES": "2", "FP16_MODE": "memory-efficient"}))
    assert slurm[0] == "srun" and flag(slurm, "--distributed-world-size") == "16"
    assert "--memory-efficient-fp16" in slurm and flag(slurm, "--update-freq") == "4"


def test_stop_lead_reaches_srun_and_torchrun(data_dir):
    """The seconds a stop request leaves for the save: SLURM's SIGUSR1 lead, torchrun's grace before SIGKILL."""
    slurm = printed_command(recipe("pretrain_large.sh", data_dir, {
        "DRY_RUN": "1", "GPUS_PER_NODE": "8", "SLURM_JOB_ID": "1", "SLURM_NTASKS": "16", "SLURM_JOB_NUM_NODES": "2"}))
    assert flag(slurm, "--signal") == "USR1@180"
    torchrun = recipe("pretrain_large.sh", data_dir, {"DRY_RUN": "1", "GPUS_PER_NODE": "8", "STOP_LEAD_S": "300"})
    assert "PET_SIGNALS_TO_HANDLE=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 TORCH_ELASTIC_SHUTDOWN_TIMEOUT=300" \
        in torchrun.stderr
    bad = recipe("pretrain_base.sh", data_dir, {"DRY_RUN": "1", "GPUS_PER_NODE": "8", "STOP_LEAD_S": "3m"})
    assert bad.returncode == 1 and "STOP_LEAD_S must be a number of seconds, not '3m'" in bad.stderr


def test_extra_arguments_come_last_and_override(data_dir):
    result = recipe("pretrain_base.sh", data_dir, {"DRY_RUN": "1", "GPUS_PER_NODE": "1"}, ["--lr", "1e-3"])
    assert printed_command(result)[-2:] == ["--lr", "1e-3"]


@pytest.fixture
def path_with_gpus(tmp_path_factory):
    """path_with_gpus(n): a PATH on which `nvidia-smi -L` lists n GPUs, whatever this machine has."""

    def path(n):
        stub = tmp_path_factory.mktemp("nvidia-smi") / "nvidia-smi"
        stub.write_text("#!/bin/sh\n" + "".join(f"echo 'GPU {i}: Stub GPU (UUID: GPU-stub-{i})'\n" for i in range(n)))
        stub.chmod(0o755)
        return f"{stub.parent}:{REPO_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"

    return path


@pytest.mark.parametrize("setup,env,gpus,message", [
    (lambda d: None, {}, 0, "no GPU visible"),
    (lambda d: None, {"GPUS_PER_NODE": "2"}, 1, "GPUS_PER_NODE=2 but only 1 GPU(s) visible"),
    (lambda d: (d / "dict.txt").unlink(), {"DRY_RUN": "1"}, 0, "vocabulary missing"),
    (lambda d: (d / "valid.idx").unlink(), {"DRY_RUN": "1"}, 0, "validation split missing"),
    (lambda d: None, {"DRY_RUN": "1", "GPUS_PER_NODE": "3"}, 0, "not a multiple of 3 GPUs"),
    (lambda d: None, {"DRY_RUN": "1", "GPUS_PER_NODE": "8", "NNODES": "2"}, 0, "needs MASTER_ADDR"),
])
def test_fails_fast_with_a_clear_message(data_dir, path_with_gpus, setup, env, gpus, message):
    setup(data_dir)
    result = recipe("pretrain_large.sh", data_dir, {**env, "PATH": path_with_gpus(gpus)})
    assert result.returncode == 1 and message in result.stderr, result.stderr


def test_missing_data_directory(tmp_path):
    result = recipe("pretrain_base.sh", tmp_path / "nope", {"DRY_RUN": "1"})
    assert result.returncode == 1 and "data directory not found" in result.stderr
