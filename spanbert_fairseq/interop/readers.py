"""Read a BERT checkpoint in any supported format into canonical HF tensors and a config.

Formats: a HuggingFace BERT directory (`config.json` + `model.safetensors` or
`pytorch_model.bin`, optionally the SBO side file), one of those weight files, or the authors'
fairseq-0.6 SpanBERT `model.pt` (keys `decoder.bert.*`, `decoder.cls.*`).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..checkpoint_io import safe_load
from .bert_layout import (
    HF_CONFIG,
    HF_TOKENIZER_CONFIG,
    HF_VOCAB,
    HF_WEIGHTS,
    SBO_FILE,
    canonicalize,
)
from .errors import InteropError

FAIRSEQ06_WEIGHTS = "model.pt"


@dataclass
class BertSource:
    kind: str  # a name for messages: "HuggingFace BERT" or "fairseq-0.6 SpanBERT"
    weights: Path  # the file the tensors came from
    tensors: dict  # canonical HF name -> tensor
    config: dict  # HF BertConfig fields
    config_origin: str  # where the config came from, for messages
    vocab: Path = None  # vocab.txt beside the weights, if any
    tokenizer_config: dict = field(default_factory=dict)  # tokenizer_config.json beside them


def read_bert_checkpoint(path, config_path=None):
    """A directory or weights file -> BertSource. `config_path` overrides the config found."""
    weights = _find_weights(Path(path))
    folder = weights.parent
    if weights.suffix == ".safetensors":
        kind, state, config = "HuggingFace BERT", load_file(str(weights)), None
    else:
        kind, state, config = _read_torch_checkpoint(weights)
    sbo_file = folder / SBO_FILE
    if sbo_file.exists():
        state.update(load_file(str(sbo_file)))
    if config_path is not None:
        config, config_origin = _read_json(Path(config_path)), str(config_path)
    elif (folder / HF_CONFIG).exists():
        config, config_origin = _read_json(folder / HF_CONFIG), str(folder / HF_CONFIG)
    elif config is not None:
        config_origin = f"the config pickled in {weights}"
    else:
        raise InteropError(f"no {HF_CONFIG} beside {weights}; give one with --config")
    try:
        tensors = canonicalize(state)
    except ValueError as e:
        raise InteropError(f"{weights}: {e}") from None
    vocab, tokenizer_config = folder / HF_VOCAB, folder / HF_TOKENIZER_CONFIG
    return BertSource(
        kind=kind,
        weights=weights,
        tensors=tensors,
        config=config,
        config_origin=config_origin,
        vocab=vocab if vocab.exists() else None,
        tokenizer_config=_read_json(tokenizer_config) if tokenizer_config.exists() else {},
    )


def _find_weights(path):
    if path.is_file():
        return path
    if not path.is_dir():
        raise InteropError(f"checkpoint not found: {path}")
    for name in (*HF_WEIGHTS, FAIRSEQ06_WEIGHTS):
        if (path / name).exists():
            return path / name
    raise InteropError(
        f"{path} holds no checkpoint: looked for {', '.join((*HF_WEIGHTS, FAIRSEQ06_WEIGHTS))}"
    )


def _read_json(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InteropError(f"cannot read the config {path}: {e}") from None


def _read_torch_checkpoint(path):
    """A torch file: a plain state dict (pytorch_model.bin) or a fairseq-0.6 checkpoint."""
    state = safe_load(path)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        if not any(k.startswith("decoder.bert.") for k in state["model"]):
            raise InteropError(
                f"{path} is a fairseq checkpoint but not the authors' SpanBERT one "
                f"(no decoder.bert.* keys); a span_bert checkpoint needs no import"
            )
        return "fairseq-0.6 SpanBERT", dict(state["model"]), _fairseq06_config(state.get("args"))
    if isinstance(state, dict) and all(torch.is_tensor(v) for v in state.values()):
        return "HuggingFace BERT", dict(state), None
    raise InteropError(f"{path} holds neither a BERT state dict nor a fairseq checkpoint")


def _fairseq06_config(args):
    """The BertConfig the authors pickled into `args.config` (read as checkpoint_io.PickledConfig),
    as a dict of HF config fields."""
    config = getattr(args, "config", None)
    if config is None:
        return None
    return {k: v for k, v in vars(config).items() if not k.startswith("_")}
