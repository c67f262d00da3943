"""Checkpoints for the interop tests: the real MiniLM imported once, and a tiny random
`BertForPreTraining` that synthetic.py writes in each layout spanbert-import reads."""

import importlib.util
from pathlib import Path

import pytest
import torch

from spanbert_fairseq.interop.import_checkpoint import import_checkpoint

_spec = importlib.util.spec_from_file_location(
    "_spanbert_interop_synthetic", Path(__file__).with_name("synthetic.py")
)
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)


@pytest.fixture(scope="session")
def imported_minilm(tmp_path_factory, minilm_dir):
    """(directory, ImportReport) of all-MiniLM-L6-v2 imported into a span_bert checkpoint."""
    out = tmp_path_factory.mktemp("minilm_span_bert")
    return out, import_checkpoint(minilm_dir, out)


@pytest.fixture(scope="session")
def tiny_bert():
    """(HF state dict of a random BertForPreTraining with tied heads, its config dict)."""
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(**synthetic.TINY_CONFIG)
    model = transformers.BertForPreTraining(config)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # A random, not zero, MLM bias, so a lost bias cannot pass for a loaded one.
    state["cls.predictions.bias"] = torch.randn(len(synthetic.TINY_VOCAB))
    state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    return state, config.to_dict()

