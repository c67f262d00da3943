"""Tiny synthetic BERT checkpoints in each layout spanbert-import reads (tests/ is not a package:
conftest.py and the tests load this file by path)."""

import argparse
import json
import sys
import types

import torch
from safetensors.torch import save_file

# A WordPiece vocabulary with BERT's specials, small enough for a model of a few KB.
TINY_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list("abcdefghijklmnopqrstuvwxyz")
    + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    + ["the", "of", "and", "span", "##ing"]
)
TINY_CONFIG = dict(
    vocab_size=len(TINY_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
)
# The authors' SBO head table sizes differ from span_bert's defaults (15 x 200) on purpose:
# import must read them off the tensors.
SBO_TARGETS, SBO_POSITION_DIM = 20, 8


TINY_VOCAB_SIZE = len(TINY_VOCAB)


def random_sbo_head(hidden=TINY_CONFIG["hidden_size"], vocab=TINY_VOCAB_SIZE):
    """The authors' `cls.pair_target_predictions` tensors (LayerNorm as weight/bias)."""
    g = torch.Generator().manual_seed(1)
    p = "cls.pair_target_predictions."
    return {
        p + "position_embeddings.weight": torch.randn(SBO_TARGETS, SBO_POSITION_DIM, generator=g),
        p + "mlp_layer_norm.linear1.weight": torch.randn(hidden, 2 * hidden + SBO_POSITION_DIM, generator=g),
        p + "mlp_layer_norm.linear1.bias": torch.randn(hidden, generator=g),
        p + "mlp_layer_norm.layer_norm1.weight": torch.randn(hidden, generator=g),
        p + "mlp_layer_norm.layer_norm1.bias": torch.randn(hidden, generator=g),
        p + "mlp_layer_norm.linear2.weight": torch.randn(hidden, hidden, generator=g),
        p + "mlp_layer_norm.linear2.bias": torch.randn(hidden, generator=g),
        p + "mlp_layer_norm.layer_norm2.weight": torch.randn(hidden, generator=g),
        p + "mlp_layer_norm.layer_norm2.bias": torch.randn(hidden, generator=g),
        p + "bias": torch.randn(vocab, generator=g),
    }


def hf_layout(state, bert_prefix=True, gamma_beta=False, pooler=True, heads=True):
    """A HF state dict in one of the spellings found in the wild."""
    out = {}
    for key, tensor in state.items():
        if not pooler and (".pooler." in key or key.startswith("cls.seq_relationship")):
            continue
        if not heads and key.startswith("cls."):
            continue
        if not bert_prefix:
            if not key.startswith("bert."):
                continue  # a bare BertModel checkpoint has no heads
            key = key[len("bert."):]
        if gamma_beta and "LayerNorm" in key:
            key = key.replace(".weight", ".gamma").replace(".bias", ".beta")
        out[key] = tensor
    return out


def write_hf_dir(directory, state, config, weights="model.safetensors", vocab=True):
    """config.json + weights (+ vocab.txt): a HuggingFace BERT directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    if weights.endswith(".safetensors"):
        save_file({k: v.contiguous().clone() for k, v in state.items()}, str(directory / weights))
    else:
        torch.save(state, directory / weights)
    if vocab:
        write_vocab(directory / "vocab.txt")
    return directory


def write_vocab(path, tokens=TINY_VOCAB):
    path.write_text("".join(t + "\n" for t in tokens))
    return path


def write_fairseq06_checkpoint(path, state, config):
    """The authors' fairseq-0.6 `model.pt`: keys `decoder.bert.*`, `decoder.cls.*`, LayerNorm
    as gamma/beta, `args.config` an instance of their `fairseq.models.pair_bert.BertConfig`,
    saved in torch's legacy (pre-zip) format. That class does not exist here, as for any user."""
    module = types.ModuleType("fairseq.models.pair_bert")
    legacy_config = type("BertConfig", (), {"__module__": module.__name__})
    module.BertConfig = legacy_config
    bert_config = legacy_config()
    bert_config.__dict__.update(config, clamp_attention=True)
    args = argparse.Namespace(
        arch="cased_bert_pair_large", task="span_bert", max_pair_targets=SBO_TARGETS,
        pair_positional_embedding_size=SBO_POSITION_DIM, no_nsp=True, config=bert_config,
    )
    model = {"decoder." + k.replace("LayerNorm.weight", "LayerNorm.gamma")
             .replace("LayerNorm.bias", "LayerNorm.beta")
             .replace("layer_norm1.weight", "layer_norm1.gamma").replace("layer_norm1.bias", "layer_norm1.beta")
             .replace("layer_norm2.weight", "layer_norm2.gamma").replace("layer_norm2.bias", "layer_norm2.beta"): v
             for k, v in state.items()}
    checkpoint = {
        "args": args, "model": model,
        "optimizer_history": [{"criterion_name": "SpanBertLoss", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": 2.1}, "num_updates": 2400000}],
        "extra_state": {"train_iterator": {"epoch": 40}}, "last_optimizer_state": None,
    }
    sys.modules[module.__name__] = module
    try:
        torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    finally:
        del sys.modules[module.__name__]
    return path
