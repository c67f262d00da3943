"""benchmarks/gpu.sh end to end on its DRY_CPU path, reduced to three rows and 4 updates (the GPU
check itself needs a GPU; this is its plumbing): the summary table's rows and columns, finite
losses, the probed GEMM dtypes, and a row that overruns its limit says so while the others go on."""

import importlib.util
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_gpu_check():
    sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.slow  # one fairseq-train and one train-step process: ~50 s of CPU


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out, work = tmp_path_factory.mktemp("out"), tmp_path_factory.mktemp("work")
    env = dict(os.environ, DRY_CPU="1", PYTHON=sys.executable, OUT=str(out), WORK=str(work), UPDATES="4",
               ROWS="amp,bf16,step_bf16", TIMEOUT_amp="1", MEMORY="0")
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh")], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result.stdout


def test_dry_cpu_ends_with_one_table_of_every_row(dry_run):
    out, stdout = dry_run
    gpu_check = load_gpu_check()
    lines = (out / "summary.md").read_text().splitlines()
    assert lines[0].startswith("GPU check on CPU (DRY_CPU): bf16 matmul")
    header, rule, *rows = lines[2:]
    assert header == "| " + " | ".join(gpu_check.HEADER) + " |"
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == list(gpu_check.ROW_ORDER)
    assert all(row.count(" | ") == len(gpu_check.HEADER) - 1 for row in rows)
    assert stdout.strip().splitlines()[-1].startswith("gpu.sh: 6 rows in ")
    assert "\n".join(lines) in stdout  # the table is what the run prints last
    with tarfile.open(out / "logs.tar.gz") as logs:
        assert {"logs/rows.tsv", "logs/bf16.log", "logs/step_bf16.log", "logs/matmul.json"} <= set(logs.getnames())


def test_dry_cpu_rows_train_to_finite_losses_under_the_precision_asked(dry_run):
    out, _ = dry_run
    rows = {row["name"]: row for row in json.loads((out / "summary.json").read_text())["rows"]}
    bf16 = rows["bf16"]
    assert bf16["verdict"] == "ok" and bf16["updates"] == 4
    assert len(bf16["losses"]) == 2 and all(math.isfinite(x) for x in bf16["losses"])
    assert set(bf16["linear_dtypes"]) == {"bfloat16"}  # --autocast-bf16: every probed GEMM ran in bf16
    assert bf16["tokens_per_s"] > 0 and bf16["peak_memory_gib"] > 0 and bf16["mfu"] > 0
    step = rows["step_bf16"]
    assert step["verdict"] == "ok" and step["step_ratio"] > 0 and step["step_ms"] > 0
    assert {side: set(d) for side, d in step["linear_dtypes"].items()} == {"span_bert": {"bfloat16"},
                                                                          "roberta": {"bfloat16"}}
    assert len(step["losses"]) == 2 and all(math.isfinite(x) for x in step["losses"])
    assert rows["amp"]["verdict"].startswith("TIMED OUT after 1 s (its limit)")
    assert {rows[name]["verdict"] for name in ("fp16", "compile", "step_fp16")} == {"not selected"}


def test_a_row_whose_gemms_ran_in_another_precision_is_flagged(dry_run):
    """What the --amp row shows when the model switches the caller's autocast off: its probed
    Linear outputs are not the dtype asked for, and the row is not ok."""
    out, _ = dry_run
    gpu_check = load_gpu_check()
    bf16 = next(row for row in json.loads((out / "summary.json").read_text())["rows"] if row["name"] == "bf16")
    assert gpu_check.verdict({**bf16, "expect": "bfloat16"}, bf16, "") == "ok"
    assert gpu_check.verdict({**bf16, "expect": "float16"}, bf16, "") == (
        "CHECK: GEMMs ran in bfloat16, not float16")
