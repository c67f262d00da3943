"""What fairseq-train prints and logs under the plugin: TensorBoard events out of the box, a clear
stop for a logging backend that is not installed, and none of fairseq's internal noise."""

import importlib.util
import struct
import subprocess
import sys
from pathlib import Path

import pytest

NOISE = ("Warning", "warning", "deprecat", "Please install tensorboardX", "pin_memory", "autocast", "Traceback")


def tensorboard_scalars(logdir):
    """{run: {tag: [values]}} from the TFRecord event files fairseq's writers left under `logdir`."""
    from tensorboardX.proto import event_pb2

    runs = {}
    for path in Path(logdir).glob("*/events.out.tfevents.*"):
        data, offset, tags = path.read_bytes(), 0, runs.setdefault(path.parent.name, {})
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4  # length, its CRC, the record, its CRC
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(value.simple_value)
    return runs


@pytest.mark.slow
def test_tensorboard_events_hold_train_and_valid_losses_and_the_run_prints_no_noise(
        tiny_data_dir, tmp_path, launch):
    logdir = tmp_path / "tb"
    extra = ["--tensorboard-logdir", str(logdir), "--validate-interval-updates", "4", "--num-workers", "2",
             "--log-format", "simple"]
    output = launch.fairseq_train(launch.tiny_training_args(tiny_data_dir, tmp_path / "save", 4, extra=extra),
                                  tmp_path)
    scalars = tensorboard_scalars(logdir)
    for run in ("train", "train_inner", "valid"):
        for tag in ("loss", "mlm_loss", "sbo_loss", "mlm_acc", "sbo_acc"):
            assert scalars.get(run, {}).get(tag), (run, tag, sorted(scalars.get(run, {})))
    assert len(scalars["train_inner"]["mlm_loss"]) == 4  # --log-interval 1
    lines = [line for line in output.splitlines() if "{'_name': " not in line]  # the config fairseq logs
    noisy = [line for line in lines if any(word in line for word in NOISE)]
    assert noisy == [], noisy


@pytest.mark.slow
def test_wandb_without_wandb_stops_at_start_in_one_line(tiny_data_dir, tmp_path, launch):
    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    args = launch.tiny_training_args(tiny_data_dir, tmp_path / "save", 4, extra=["--wandb-project", "demo"])
    run = subprocess.run([sys.executable, "-m", "fairseq_cli.train", *args], capture_output=True, text=True,
                         timeout=300)
    errors = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert errors == ["fairseq-train: error: --wandb-project demo: wandb is not installed "
                      "(pip install wandb, then wandb login)"], run.stderr[-3000:]
    assert "num_updates" not in run.stdout + run.stderr  # stopped before the first update


def test_help_of_a_console_script_prints_only_its_help():
    run = subprocess.run([str(Path(sys.executable).parent / "spanbert-import"), "--help"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("usage: spanbert-import") and run.stderr == ""


def test_real_warnings_still_show_in_fairseq_commands():
    """The filters match fairseq's own notices only: another warning, even from Hydra's category, shows."""
    probe = ("import warnings; from spanbert_fairseq import patches; patches.apply('train'); "
             "warnings.warn('a real problem with the run', UserWarning); "
             "warnings.warn(\"'pin_memory' argument is set as true but no accelerator is found\", UserWarning)")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "a real problem with the run" in run.stderr and "pin_memory" not in run.stderr, run.stderr
