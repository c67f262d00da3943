"""The checkpoints spanbert-eval reads: fairseq-train's, spanbert-import's (untrained here), a
HuggingFace directory through the import, and heads that have nothing to report."""

import math

import pytest
import torch

from spanbert_fairseq.checkpoint_io import safe_load
from spanbert_fairseq.interop.export_checkpoint import export_checkpoint
from spanbert_fairseq.interop.span_bert_checkpoint import FRESH_HEADS_KEY


def _total(record, index=0):
    return record["checkpoints"][index]["rows"][-1]


def _vocabulary_size(data_dir):
    return len((data_dir / "dict.txt").read_text(encoding="utf-8").splitlines())


def test_untrained_model_scores_near_chance(evaluate, untrained_dir, tiny_data_dir):
    record = evaluate(untrained_dir, "--data", tiny_data_dir, "--tokens-per-sample", 64)
    total, chance_bits = _total(record), math.log2(_vocabulary_size(tiny_data_dir))
    # N(0, 0.02) embeddings give logits of std ~0.02 * sqrt(128) = 0.23: the expected cross-entropy is
    # log2(V) + ~0.04 bits, so 0.15 bits is a tolerance, not an escape.
    for head in ("mlm", "sbo"):
        assert abs(total[f"{head}_loss"] - chance_bits) < 0.15, (head, total[f"{head}_loss"], chance_bits)
        # Chance is 1/V (0.08 % here); an argmax that ignores the context scores its favourite token's
        # share of the targets, a few percent at most even for "the" or ",": hence 5 %.
        assert total[f"{head}_acc"] < 5.0, (head, total[f"{head}_acc"])
        assert total[f"{head}_exact"] < 5.0


@pytest.mark.slow  # a fairseq-train run makes the checkpoint
def test_trained_model_scores_above_chance(evaluate, trained_dir, tiny_data_dir):
    total = _total(evaluate(trained_dir / "checkpoint_last.pt", "--data", tiny_data_dir))
    chance_bits = math.log2(_vocabulary_size(tiny_data_dir))
    for head in ("mlm", "sbo"):
        assert total[f"{head}_loss"] < chance_bits - 2, (head, total[f"{head}_loss"])
        assert total[f"{head}_acc"] > 5.0, (head, total[f"{head}_acc"])


@pytest.mark.slow  # a fairseq-train run makes the checkpoint
def test_huggingface_export_scores_as_its_checkpoint(evaluate, assert_same_figures, trained_dir, tiny_data_dir,
                                                     tmp_path):
    checkpoint = trained_dir / "checkpoint_last.pt"
    export_checkpoint(checkpoint, tmp_path / "hf", vocab=tiny_data_dir / "dict.txt")
    record = evaluate(checkpoint, tmp_path / "hf", "--data", tiny_data_dir)
    original, exported = record["checkpoints"]
    assert exported["mlm"] and exported["sbo"] and not exported["notes"]  # the SBO head came back via its side file
    assert_same_figures(original["rows"], exported["rows"])


@pytest.mark.slow  # a fairseq-train run makes the checkpoint
def test_checkpoint_trained_without_sbo_has_no_sbo_figures(evaluate, trained_dir, tiny_data_dir, tmp_path):
    state = safe_load(trained_dir / "checkpoint_last.pt")
    state["cfg"]["criterion"]["sbo_weight"] = 0.0
    torch.save(state, tmp_path / "no_sbo.pt")
    record = evaluate(tmp_path / "no_sbo.pt", "--data", tiny_data_dir)
    checkpoint = record["checkpoints"][0]
    assert checkpoint["mlm"] and not checkpoint["sbo"]
    assert any("--sbo-weight 0" in note for note in checkpoint["notes"])
    assert all("sbo_acc" not in row for row in checkpoint["rows"])


def test_heads_the_import_initialised_fresh_have_no_figures(evaluate, untrained_dir, tiny_data_dir, tmp_path):
    state = safe_load(untrained_dir / "model.pt")
    state[FRESH_HEADS_KEY] = ["SBO head"]
    (tmp_path / "imported").mkdir()
    torch.save(state, tmp_path / "imported" / "model.pt")
    (tmp_path / "imported" / "dict.txt").write_bytes((untrained_dir / "dict.txt").read_bytes())
    checkpoint = evaluate(tmp_path / "imported", "--data", tiny_data_dir, "--tokens-per-sample", 64)["checkpoints"][0]
    assert checkpoint["mlm"] and not checkpoint["sbo"]
    assert checkpoint["notes"] == ["SBO head initialised fresh by the import (not in the checkpoint): no SBO figures"]
