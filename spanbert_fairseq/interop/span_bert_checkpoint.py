"""Write and read fairseq checkpoints of the `span_bert` model.

An imported checkpoint is what `fairseq-train` itself would save before its first update:
the model state dict, the config of such a run, and no optimizer state. So
`fairseq-train --restore-file` (or `--finetune-from-model`) and `SpanBertModel.from_pretrained`
read it with no special case.
"""

import os
import warnings
from pathlib import Path

import torch
from fairseq import checkpoint_utils, options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.models import ARCH_MODEL_NAME_REGISTRY
from omegaconf import OmegaConf

from .errors import InteropError

ARCH = "spanbert_base"  # every size is passed explicitly; the name only supplies defaults
TASK = CRITERION = MODEL = "span_bert"
# Top-level key of an imported checkpoint holding HF tensors span_bert has no module for
# (pooler, NSP head), so spanbert-export can give them back. fairseq ignores unknown keys.
CARRIED_KEY = "hf_carried_tensors"
# Model args of docs/DESIGN.md that describe the architecture, in the order they are printed.
ARCH_ARGS = (
    "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads",
    "max_positions", "type_vocab_size", "layer_norm_eps", "dropout", "attention_dropout",
    "sbo_position_dim", "max_pair_targets",
)


def arch_flags(model_args):
    """fairseq-train flags that build this architecture: `--arch ... --encoder-layers 6 ...`."""
    flags = ["--arch", ARCH]
    for name in ARCH_ARGS:
        if name in model_args:
            flags += ["--" + name.replace("_", "-"), str(model_args[name])]
    return flags


def training_cfg(data_dir, model_args):
    """The fairseq config that `fairseq-train data_dir --task span_bert <arch flags>` records."""
    argv = [str(data_dir), "--task", TASK, "--criterion", CRITERION, *arch_flags(model_args)]
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    with warnings.catch_warnings():  # hydra's deprecation notices about fairseq's own use of it
        warnings.simplefilter("ignore")
        return convert_namespace_to_omegaconf(args)


def model_args_of(cfg):
    """The architecture args of a span_bert checkpoint's config."""
    return {name: cfg.model[name] for name in ARCH_ARGS}


class _DictionaryOnlyTask:
    """The model needs only the vocabulary from its task; import has no data to set a task up on."""

    def __init__(self, dictionary):
        self.source_dictionary = self.target_dictionary = dictionary


def build_model(cfg, dictionary):
    from spanbert_fairseq.models.span_bert import SpanBertModel

    return SpanBertModel.build_model(cfg.model, _DictionaryOnlyTask(dictionary))


def save_checkpoint(path, cfg, model_state, carried):
    """Write an imported checkpoint atomically (a temporary file, then rename)."""
    state = {
        "args": None,
        "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "model": model_state,
        "criterion": {},
        "optimizer_history": [
            {
                "criterion_name": "SpanBertLoss",
                "optimizer_name": "none",  # no optimizer state: nothing to restore
                "lr_scheduler_state": {"best": None},
                "num_updates": 0,
            }
        ],
        "last_optimizer_state": None,
        "task_state": {},
        # Epoch 1, nothing consumed: without --reset-dataloader training starts from the top.
        "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0, "shuffle": True}},
        CARRIED_KEY: carried,
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path):
    """A span_bert checkpoint (imported or saved by fairseq-train) -> (cfg, model state, carried)."""
    if not Path(path).is_file():
        raise InteropError(f"checkpoint not found: {path}")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(str(path))
    except Exception as e:  # a truncated or foreign file: say which
        raise InteropError(f"cannot read {path} as a fairseq checkpoint: {e}") from None
    cfg = state.get("cfg")
    arch = cfg.model.get("_name") if cfg is not None and cfg.get("model") is not None else None
    if ARCH_MODEL_NAME_REGISTRY.get(arch, arch) != MODEL:
        raise InteropError(f"{path} is not a span_bert checkpoint (its architecture is {arch!r})")
    return cfg, state["model"], state.get(CARRIED_KEY) or {}
