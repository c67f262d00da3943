"""recipes/ablation.sh end to end: two variants, a few updates, on the pydoc corpus."""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_variants_train_evaluate_and_report(corpus_data_dir, tmp_path):
    out = tmp_path / "ablation"
    env = {**os.environ, "OUT": str(out), "UPDATES": "6", "VARIANTS": "subword span_sbo"}
    result = subprocess.run(["bash", str(REPO_ROOT / "recipes" / "ablation.sh"), str(corpus_data_dir)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ablation.sh: subword trained" in result.stdout and "ablation.sh: span_sbo trained" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("ablation.sh: done: 2 variants x 6 updates")

    for variant in ("subword", "span_sbo"):
        log = (out / variant / "train.log").read_text()
        assert '"num_updates": "6"' in log  # equal updates
        assert (out / variant / "checkpoint_last.pt").exists() and not (out / variant / "checkpoint_best.pt").exists()
    span, subword = (json.loads((out / f"eval_{s}.json").read_text()) for s in ("span", "subword"))
    assert [c["name"] for c in span["checkpoints"]] == ["subword", "span_sbo"]
    assert [c["sbo"] for c in span["checkpoints"]] == [False, True]  # subword trained with --sbo-weight 0
    assert span["masking"]["scheme"] == "span" and subword["masking"]["scheme"] == "subword"
    report = (out / "ablation.md").read_text()
    assert "## On span masks" in report and "## On subword masks" in report and "### span_sbo" in report
    for png in ("curves.png", "accuracy_by_span_length.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
