"""recipes/random_init_checkpoint.py: the no-pretraining baseline, loadable wherever a checkpoint goes."""

import importlib.util
import shutil
from pathlib import Path

import torch

from spanbert_fairseq.checkpoint_io import safe_load
from spanbert_fairseq.hub import from_pretrained

_spec = importlib.util.spec_from_file_location(
    "_random_init_checkpoint", Path(__file__).resolve().parents[2] / "recipes" / "random_init_checkpoint.py"
)
random_init = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(random_init)


def test_fresh_weights_of_the_same_shapes_seeded_and_safe_to_load(tmp_path, untrained_dir, tiny_data_dir, capsys):
    checkpoint = tmp_path / "source" / "model.pt"
    checkpoint.parent.mkdir()
    for path in (untrained_dir / "model.pt", untrained_dir / "dict.txt", tiny_data_dir / "vocab.txt"):
        shutil.copy(path, checkpoint.parent)
    source = safe_load(checkpoint)["model"]
    drawn = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        random_init.main([str(checkpoint), seed, str(tmp_path / name)])
        drawn[name] = safe_load(tmp_path / name / "checkpoint_last.pt")["model"]  # the restricted unpickler reads it
        for vocabulary in ("dict.txt", "vocab.txt"):
            assert (tmp_path / name / vocabulary).read_text() == (checkpoint.parent / vocabulary).read_text()
    assert "drawn with seed 2" in capsys.readouterr().out
    assert {k: v.shape for k, v in drawn["a"].items()} == {k: v.shape for k, v in source.items()}
    key = "encoder.bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(drawn["a"][key], drawn["b"][key])
    assert not torch.equal(drawn["a"][key], drawn["c"][key]) and not torch.equal(drawn["a"][key], source[key])
    hub = from_pretrained(tmp_path / "c")  # vocabulary and tokenizer found beside it
    assert torch.equal(hub.model.state_dict()[key], drawn["c"][key])
