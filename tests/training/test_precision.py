"""Precision in a real fairseq-train update: the GEMMs run in the autocast dtype that --amp or
--autocast-bf16 sets, --autocast-bf16 changes what is computed, and --autocast-bf16 with --fp16
stops before training with one line.

Every nn.Linear of the encoder and both heads gets a forward hook that records its output dtype
while the model trains. fairseq 0.12's --amp wraps the step in `torch.cuda.amp.autocast`, which
does nothing to CPU tensors; for the --amp case the driver points that name at CPU autocast
(bf16), so the trainer's own code path runs with an autocast active, as it does on a GPU.
"""

import json
import subprocess
import sys

import pytest

DRIVER = """
import json, sys
import torch

out, cpu_amp = sys.argv[1], sys.argv[2] == "1"
sys.argv = ["fairseq-train"] + sys.argv[3:]  # the plugin installs fairseq-train's patches
if cpu_amp:
    torch.cuda.amp.autocast = lambda enabled=True, **kw: torch.autocast("cpu", torch.bfloat16, enabled=enabled)

from fairseq_cli.train import cli_main
from spanbert_fairseq.models.span_bert import SpanBertModel

dtypes = {}
build_model = SpanBertModel.build_model.__func__


def record(name):
    def hook(module, inputs, output):
        if module.training:
            dtypes.setdefault(name, set()).add(str(output.dtype).replace("torch.", ""))

    return hook


def hooked_build_model(cls, cfg, task):
    model = build_model(cls, cfg, task)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(record(name))
    return model


SpanBertModel.build_model = classmethod(hooked_build_model)
try:
    cli_main()
finally:
    with open(out, "w") as f:
        json.dump({k: sorted(v) for k, v in dtypes.items()}, f)
"""


def train_with_hooks(launch, data_dir, tmp_path, name, flags, cpu_amp=False, updates=8):
    """fairseq-train through the driver: (logged train_inner records, {linear: [output dtypes]})."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out = tmp_path / f"{name}.json"
    args = launch.tiny_training_args(data_dir, tmp_path / name, updates, extra=["--no-save", *flags])
    output = launch.run([sys.executable, str(driver), str(out), "1" if cpu_amp else "0", *args], tmp_path,
                        f"{name}.log")
    return launch.logged_records(output, "train_inner"), json.loads(out.read_text())


def assert_every_gemm(dtypes, dtype):
    # Encoder: q of the last layer (it runs on the heads' rows alone), attention output, FFN in and out
    # per layer (q/k/v elsewhere go through one fused F.linear); MLM head dense; SBO linear1, linear2.
    assert len(dtypes) >= 2 * 3 + 1 + 1 + 2, dtypes
    assert all(seen == [dtype] for seen in dtypes.values()), dtypes


@pytest.mark.slow
def test_fairseq_amp_reaches_every_gemm(tiny_data_dir, tmp_path, launch):
    _, dtypes = train_with_hooks(launch, tiny_data_dir, tmp_path, "amp", ["--amp"], cpu_amp=True, updates=2)
    assert_every_gemm(dtypes, "bfloat16")


@pytest.mark.slow
def test_autocast_bf16_runs_the_gemms_in_bf16_and_changes_the_losses(tiny_data_dir, tmp_path, launch):
    fp32, fp32_dtypes = train_with_hooks(launch, tiny_data_dir, tmp_path, "fp32", [])
    bf16, bf16_dtypes = train_with_hooks(launch, tiny_data_dir, tmp_path, "bf16", ["--autocast-bf16"])
    assert_every_gemm(fp32_dtypes, "float32")
    assert_every_gemm(bf16_dtypes, "bfloat16")
    assert [r["num_updates"] for r in bf16] == [r["num_updates"] for r in fp32] == list(range(1, 9))
    # Same seed, same batches, same masks: only the arithmetic differs. bf16's rounding of the
    # GEMM outputs is unbiased and the loss averages ~70 targets in fp32, so the logged values
    # (3 decimals, ppl 2) move in the last digits: measured 0.001-0.004 bits on the dev machine.
    keys = ("loss", "mlm_loss", "sbo_loss", "ppl")
    assert any(a[k] != b[k] for a, b in zip(fp32, bf16) for k in keys)
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(fp32, bf16)) < 0.1


@pytest.mark.slow
@pytest.mark.parametrize("half", ["--fp16", "--memory-efficient-fp16"])
def test_autocast_bf16_with_fp16_stops_before_training_in_one_line(tiny_data_dir, tmp_path, launch, half):
    save_dir = tmp_path / "checkpoints"
    args = launch.tiny_training_args(tiny_data_dir, save_dir, 2, extra=["--autocast-bf16", half])
    proc = subprocess.run([sys.executable, "-m", "fairseq_cli.train", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert errors == [f"fairseq-train: error: --autocast-bf16 trains fp32 weights under a bf16 autocast and {half} "
                      f"makes them fp16: use one of the two (drop {half} or --autocast-bf16)"], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not (save_dir / "crash.pt").exists() and not list(save_dir.glob("*.pt"))
