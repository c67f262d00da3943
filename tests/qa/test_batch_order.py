"""span_qa's training order: random batches by default, as the authors' run_squad.py draws them;
`--batch-order length` groups windows of similar length; validation is always by length."""

from pathlib import Path

import numpy as np
import pytest
import qa_synthetic as synthetic
from fairseq import tasks, utils
from fairseq.dataclass.configs import FairseqConfig
from fairseq.dataclass.initialize import add_defaults
from omegaconf import OmegaConf

from spanbert_text.vocabulary import Vocabulary

USER_DIR = str(Path(__file__).resolve().parents[2] / "spanbert_fairseq")


def loaded_split(vocabulary_dirs, tmp_path, split="train", **task_flags):
    for f in vocabulary_dirs["wordpiece-cased"].iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    vocabulary = Vocabulary.load(tmp_path / "dict.txt")
    document = synthetic.likes_task(vocabulary, 200, seed=1, people_per_context=2)
    synthetic.write(tmp_path / f"{split}.json", document)
    cfg = OmegaConf.structured(FairseqConfig)
    task_cfg = {"_name": "span_qa", "data": str(tmp_path), "max_seq_length": 24, "doc_stride": 4,
                "max_query_length": 8, **task_flags}
    cfg = OmegaConf.merge(cfg, {"task": task_cfg, "common": {"user_dir": USER_DIR, "seed": 3}})
    utils.import_user_module(cfg.common)
    add_defaults(cfg)
    task = tasks.setup_task(cfg.task)
    task.load_dataset(split)
    return cfg, task.datasets[split]


def correlation_with_place(sizes):
    """The correlation of the windows' sizes, as ordered, with their place in the order."""
    return np.corrcoef(np.arange(len(sizes)), sizes)[0, 1]


def test_training_batches_are_drawn_at_random_by_default(vocabulary_dirs, tmp_path):
    cfg, dataset = loaded_split(vocabulary_dirs, tmp_path)
    assert cfg.task.batch_order == "random"
    assert len(np.unique(dataset.sizes)) >= 3, "the set should hold windows of several lengths"
    dataset.set_epoch(1)
    first = dataset.ordered_indices()
    assert sorted(first) == list(range(len(dataset)))
    # Seed 3, N windows: a random order's correlation with length is about normal with spread
    # 1/sqrt(N) (under 0.05 here), so below 0.15 in all but odds under 1e-3; a sorted one's is near 0.8.
    assert len(dataset) > 400
    assert abs(correlation_with_place(dataset.sizes[first])) < 0.15
    assert np.array_equal(dataset.ordered_indices(), first), "an epoch's order is a function of seed and epoch"
    dataset.set_epoch(2)
    assert not np.array_equal(dataset.ordered_indices(), first), "each epoch draws a fresh order"


@pytest.mark.parametrize("split, batch_order", [("train", "length"), ("valid", "random")])
def test_length_order_groups_windows_of_similar_length(vocabulary_dirs, tmp_path, split, batch_order):
    """Training with `--batch-order length`, and validation whatever the flag."""
    _, dataset = loaded_split(vocabulary_dirs, tmp_path, split, batch_order=batch_order)
    order = dataset.ordered_indices()
    assert sorted(order) == list(range(len(dataset)))
    assert np.all(np.diff(dataset.sizes[order]) >= 0)
