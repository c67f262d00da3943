"""spanbert-eval as a user runs it: its outputs, and bad input as one error line with exit status 1
(the console script itself for the bad input of the issue; in this process where that is enough)."""

import shutil

import pytest

from spanbert_fairseq.evaluation.cli import PROG, run
from spanbert_text.errors import run_cli

pytestmark = pytest.mark.slow  # a fairseq-train run makes the checkpoint


def assert_one_line_error(code, stderr, *fragments):
    assert code == 1, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("spanbert-eval: error: ")]
    assert len(errors) == 1, stderr
    for fragment in fragments:
        assert str(fragment) in errors[0], f"{fragment!r} not in {errors[0]!r}"


def _in_process(capsys, *argv):
    code = run_cli(PROG, run, [str(a) for a in argv])
    stdout, stderr = capsys.readouterr()
    return code, stdout, stderr


def test_outputs_tables_json_plot_and_a_summary_line(capsys, trained_dir, tiny_data_dir, tmp_path):
    json_path, plot_path = tmp_path / "eval.json", tmp_path / "eval.png"
    code, stdout, stderr = _in_process(capsys, trained_dir, trained_dir / "checkpoint_30.pt", "--data", tiny_data_dir,
                                       "--json", json_path, "--plot", plot_path)
    assert code == 0, stderr
    assert stdout.count("| span words | spans | MLM tokens | MLM acc % |") == 2  # one table per checkpoint
    assert f"### {trained_dir}\n" in stdout  # a directory loads its checkpoint_last.pt
    assert json_path.exists()
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = stderr.strip().splitlines()[-1]
    assert summary.startswith("spanbert-eval: evaluated 2 checkpoint(s) on ")
    assert str(json_path) in summary and str(plot_path) in summary


def test_missing_split(spanbert_eval, trained_dir, tiny_data_dir):
    code, _, stderr = spanbert_eval(trained_dir, "--data", tiny_data_dir, "--split", "test")
    assert_one_line_error(code, stderr, "split 'test' not found", tiny_data_dir / "test.idx")


def test_missing_checkpoint(capsys, tiny_data_dir, tmp_path):
    code, _, stderr = _in_process(capsys, tmp_path / "nothing.pt", "--data", tiny_data_dir)
    assert_one_line_error(code, stderr, "checkpoint not found", tmp_path / "nothing.pt")


def test_vocabulary_of_the_same_size_but_other_entries(spanbert_eval, trained_dir, tiny_data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    lines = (data / "dict.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[200], lines[201] = lines[201], lines[200]  # two ordinary words trade ids
    (data / "dict.txt").write_text("".join(lines), encoding="utf-8")
    code, _, stderr = spanbert_eval(trained_dir / "checkpoint_last.pt", "--data", data)
    assert_one_line_error(code, stderr, "vocabulary mismatch", "line 201", data / "dict.txt")


def test_released_bert_whose_vocabulary_is_not_the_datas(spanbert_eval, minilm_dir, tiny_data_dir):
    code, _, stderr = spanbert_eval(minilm_dir, "--data", tiny_data_dir)
    size = len((tiny_data_dir / "dict.txt").read_text(encoding="utf-8").splitlines())
    assert_one_line_error(code, stderr, "vocabulary mismatch", "30522", f"has {size}")
