"""fairseq-train pretrains spanbert_tiny on CPU on real text: it learns, saves, and resumes."""

import math
from statistics import mean

import pytest

from spanbert_fairseq.data.dictionary import BertDictionary


@pytest.mark.slow
def test_pretraining_learns_writes_checkpoints_and_resumes(corpus_data_dir, tmp_path, launch):
    save_dir = tmp_path / "checkpoints"
    every_30 = ["--validate-interval-updates", "30", "--save-interval-updates", "30", "--no-epoch-checkpoints"]
    first = launch.fairseq_train(launch.tiny_training_args(corpus_data_dir, save_dir, 60, extra=every_30), tmp_path)

    steps = launch.logged_records(first, "train_inner")
    assert [s["num_updates"] for s in steps] == list(range(1, 61))
    vocab_bits = math.log2(len(BertDictionary.load(str(corpus_data_dir / "dict.txt"))))
    # Untrained, each loss is about log2(V) = 11 bits per target. Over --seed 1..8 the means of the
    # last 10 updates were 7.2-9.0 bits (both heads) and the valid losses 8.6-9.1, so the bounds
    # below leave >= 0.5 bit for other machines' rounding; accuracy was 4-22% (chance 0.05%).
    # (Per-target losses: batches differ in size, and a batch of short blocks may have no SBO target.)
    assert mean(s["mlm_loss"] for s in steps[:3]) > vocab_bits - 0.5
    assert mean(s["mlm_loss"] for s in steps[-10:]) < vocab_bits - 1.5
    assert mean(s["sbo_loss"] for s in steps[-10:]) < vocab_bits - 1.5
    chance = 100 / 2 ** vocab_bits  # % accuracy of a uniform guess
    assert mean(s["mlm_acc"] for s in steps[-10:]) > 20 * chance
    assert mean(s["sbo_acc"] for s in steps[-10:]) > 20 * chance
    valid = launch.logged_records(first, "valid")
    assert valid[-1]["valid_mlm_loss"] < vocab_bits - 1.25 and valid[-1]["valid_sbo_loss"] < vocab_bits - 1.25
    for name in ("checkpoint_last.pt", "checkpoint_best.pt", "checkpoint_1_30.pt", "checkpoint_1_60.pt"):
        assert (save_dir / name).exists(), name

    # The same command with a later --max-update continues from checkpoint_last.pt.
    resumed = launch.fairseq_train(
        launch.tiny_training_args(corpus_data_dir, save_dir, 70, extra=every_30), tmp_path, "resume.log"
    )
    assert "@ 60 updates" in resumed and "checkpoint_last.pt" in resumed
    more = launch.logged_records(resumed, "train_inner")
    assert [s["num_updates"] for s in more] == list(range(61, 71))
    # Trained weights and optimizer state came back: the loss stays where it was, not at the start.
    assert mean(s["mlm_loss"] for s in more) < vocab_bits - 1.5
