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
    for step in range(1, 7):
        assert f"== {step}/6" in out
    assert re.search(r"\| (train_inner|train) \|.*num_updates", out)  # progress was shown
    assert len(re.findall(r"hidden: .* MLM: .* SBO: ", out)) == 6
    table = out[out.index("| span words | spans | MLM tokens | MLM acc % |"):]  # spanbert-eval, after the fills
    assert [line.split(" | ")[0] for line in table.splitlines()[2:14]] == [f"| {n}" for n in
                                                                           [*range(1, 11), "11+", "all"]]
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("demo.sh: done in") and "checkpoint_last.pt" in summary
    model_dir = tmp_path / "demo" / "checkpoints"
    for name in ("checkpoint_last.pt", "dict.txt", "vocab.txt", "tokenizer.json"):
        assert (model_dir / name).exists(), name
    assert (tmp_path / "demo" / "train_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "demo" / "eval.json").exists()
