"""The evaluation masks: the same for every checkpoint, run and batch size; another seed, other masks."""

import pytest

COUNT_KEYS = ("span_words", "spans", "mlm_tokens", "sbo_tokens", "sbo_spans")


def _counts(checkpoint_record):
    return [{k: row.get(k) for k in COUNT_KEYS} for row in checkpoint_record["rows"]]


@pytest.mark.slow  # a fairseq-train run makes the checkpoints
def test_masks_are_identical_across_checkpoints_runs_and_batch_sizes(evaluate, assert_same_figures, trained_dir,
                                                                   tiny_data_dir):
    last, middle = trained_dir / "checkpoint_last.pt", trained_dir / "checkpoint_30.pt"
    both = evaluate(last, middle, "--data", tiny_data_dir, "--seed", 3)
    alone = evaluate(middle, "--data", tiny_data_dir, "--seed", 3, "--batch-size", 5)
    other_seed = evaluate(middle, "--data", tiny_data_dir, "--seed", 4)

    assert both["masking"]["fingerprint"] == alone["masking"]["fingerprint"]
    assert _counts(both["checkpoints"][0]) == _counts(both["checkpoints"][1]) == _counts(alone["checkpoints"][0])
    # A checkpoint's figures do not depend on what it is compared with, nor on the batch size.
    assert_same_figures(both["checkpoints"][1]["rows"], alone["checkpoints"][0]["rows"])
    # The two checkpoints differ (60 vs 30 updates), so equal figures above are not a tautology.
    assert both["checkpoints"][0]["rows"][-1]["mlm_loss"] != both["checkpoints"][1]["rows"][-1]["mlm_loss"]

    assert other_seed["masking"]["fingerprint"] != both["masking"]["fingerprint"]
    assert _counts(other_seed["checkpoints"][0]) != _counts(alone["checkpoints"][0])
