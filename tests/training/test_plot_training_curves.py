"""recipes/plot_training_curves.py: fairseq-train logs in both formats, and the curves' PNG."""

import importlib.util
from pathlib import Path

import pytest

from spanbert_text.errors import UserInputError

_spec = importlib.util.spec_from_file_location(
    "_plot_training_curves", Path(__file__).resolve().parents[2] / "recipes" / "plot_training_curves.py"
)
plot_training_curves = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plot_training_curves)
read_log, run = plot_training_curves.read_log, plot_training_curves.run

# Lines as fairseq-train 0.12 writes them with the span_bert criterion (--log-format simple / json).
SIMPLE = """\
2026-12-01 08:25:13 | INFO | train_inner | epoch 001:     50 / 295 loss=21.028, mlm_loss=10.98, sbo_loss=10.984, \
mlm_acc=3.25, sbo_acc=2.79, ppl=2019.12, wps=6146.7, ups=3.7, num_updates=50, lr=0.001, wall=16
2026-12-01 08:26:08 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 17.807 | mlm_loss 9.245 | \
sbo_loss 9.418 | mlm_acc 8.21 | sbo_acc 5.17 | ppl 606.72 | num_updates 295
2026-12-01 08:26:08 | INFO | train | epoch 001 | loss 18.067 | mlm_loss 9.437 | num_updates 295
"""
JSON = """\
2026-12-01 08:31:49 | INFO | train_inner | {"epoch": 2, "update": 1.017, "loss": "16.918", "mlm_loss": "8.831", \
"sbo_loss": "8.926", "mlm_acc": "10.88", "sbo_acc": "9.45", "num_updates": "300", "lr": "0.00186207"}
2026-12-01 08:31:52 | INFO | valid | {"epoch": 2, "valid_loss": "17.772", "valid_mlm_loss": "9.222", \
"valid_sbo_loss": "9.405", "valid_mlm_acc": "7.49", "valid_sbo_acc": "5.1", "valid_num_updates": "311"}
"""


@pytest.mark.parametrize("text", [SIMPLE, JSON], ids=["simple", "json"])
def test_reads_train_inner_and_valid_records(tmp_path, text):
    (tmp_path / "train.log").write_text(text)
    records = read_log(tmp_path / "train.log")
    (train,), (valid,) = records["train_inner"], records["valid"]
    if text is SIMPLE:
        assert train["num_updates"] == 50 and train["mlm_acc"] == 3.25 and train["sbo_loss"] == 10.984
        assert valid["num_updates"] == 295 and valid["mlm_loss"] == 9.245 and valid["sbo_acc"] == 5.17
    else:
        assert train["num_updates"] == 300 and train["mlm_acc"] == 10.88
        assert valid["num_updates"] == 311 and valid["sbo_loss"] == 9.405 and "valid_sbo_loss" not in valid


def test_plot_of_two_logs(tmp_path):
    for name, text in (("a", SIMPLE), ("b", JSON)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "train.log").write_text(text)
    run([str(tmp_path / "curves.png"), str(tmp_path / "a" / "train.log"), str(tmp_path / "b" / "train.log")])
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_file_that_is_not_a_training_log(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here\n")
    with pytest.raises(UserInputError, match="no train_inner or valid lines"):
        read_log(tmp_path / "notes.txt")


def test_metric_names_with_digits_are_read(tmp_path):
    """span_qa's f1 and best_f1 (a digit in the name) in the simple format, as finetune_squad.sh logs them."""
    (tmp_path / "train.log").write_text(
        "2026-12-02 14:19:58 | INFO | valid | epoch 003 | valid on 'valid' subset | loss 4.064 | exact_match 32 | "
        "f1 33.04 | wps 5637.9 | num_updates 129 | best_f1 33.04\n")
    (valid,) = read_log(tmp_path / "train.log")["valid"]
    assert (valid["epoch"], valid["exact_match"], valid["f1"], valid["best_f1"]) == (3, 32, 33.04, 33.04)
