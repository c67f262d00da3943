"""recipes/finetune_table.py: the spread over seeds, and the last validation's F1 from either log format."""

import importlib.util
import json
from pathlib import Path

import pytest

from spanbert_text.errors import UserInputError

_spec = importlib.util.spec_from_file_location(
    "_finetune_table", Path(__file__).resolve().parents[2] / "recipes" / "finetune_table.py"
)
finetune_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(finetune_table)

SIMPLE = (
    "2026-12-02 02:00:26 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 4.466 | exact_match 7 | f1 10.91\n"
    "2026-12-02 02:02:07 | INFO | valid | epoch 002 | valid on 'valid' subset | exact_match 9.33 | f1 12.9\n"
)
JSON = (
    '2026-12-02 01:44:04 | INFO | valid | {"epoch": 1, "valid_exact_match": "9.33", "valid_f1": "11.2"}\n'
    '2026-12-02 01:45:08 | INFO | valid | {"epoch": 2, "valid_exact_match": "12", "valid_f1": "14.22", '
    '"valid_best_f1": "14.22"}\n'
)


def _run(directory, em, f1, log=None, wall=None):
    directory.mkdir(parents=True)
    (directory / "eval.json").write_text(json.dumps({"exact_match": em, "f1": f1, "total": 300}))
    if log is not None:
        (directory / "train.log").write_text(log)
    if wall is not None:
        (directory / "wall_s").write_text(f"{wall}\n")


def test_table_rows_hold_mean_std_range_and_the_last_epoch(tmp_path, capsys):
    _run(tmp_path / "b" / "seed1", 10.0, 20.0, SIMPLE, 100)
    _run(tmp_path / "b" / "seed2", 14.0, 26.0, JSON, 120)
    _run(tmp_path / "a" / "seed1", 5.0, 8.0)
    finetune_table.main([str(tmp_path)])
    header, _, row_a, row_b = capsys.readouterr().out.strip().splitlines()
    assert row_a.startswith("| a | 1 | 5.00 ± 0.00 (5.00-5.00) |") and row_a.endswith("| - | - |")
    assert "| 12.00 ± 2.83 (10.00-14.00) | 23.00 ± 4.24 (20.00-26.00) | 10.00 / 14.00 |" in row_b
    assert row_b.endswith("| 13.56 (12.90 / 14.22) | 110 (100-120) |")
    assert len(header.split("|")) == len(row_b.split("|"))


def test_a_start_without_runs_names_its_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="empty: no seedN/eval.json"):
        finetune_table.main([str(tmp_path), "empty"])
