"""recipes/demo.sh end to end, with the training cut to seconds."""

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_pretrains_and_fills_spans(tmp_path):
    env = {**os.environ, "DEMO_DIR": str(tmp_path / "demo"), "TRAIN_MINUTES": "0.2"}
    result = subprocess.run(["bash", str(REPO_ROOT / "recipes" / "demo.sh")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in range(1, 6):
        assert f"== {step}/5" in out
    assert re.search(r"\| (train_inner|train) \|.*num_updates", out)  # progress was shown
    assert len(re.findall(r"hidden: .* MLM: .* SBO: ", out)) == 6
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("demo.sh: done in") and "checkpoint_last.pt" in summary
    model_dir = tmp_path / "demo" / "checkpoints"
    for name in ("checkpoint_last.pt", "dict.txt", "vocab.txt", "tokenizer.json"):
        assert (model_dir / name).exists(), name
