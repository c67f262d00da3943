"""Write and read fairseq checkpoints of the `span_bert` model.

An imported checkpoint is what `fairseq-train` itself would save before its first update:
the model state dict, the config of such a run, and no optimizer state. So
`fairseq-train --restore-file` (or `--finetune-from-model`) and `SpanBertModel.from_pretrained`
read it with no special case.
"""

import warnings

from fairseq import options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from omegaconf import OmegaConf

from ..checkpoint_io import load_span_bert_checkpoint, save_atomically

ARCH = "spanbert_base"  # every size is passed explicitly; the name only supplies defaults
TASK = CRITERION = MODEL = "span_bert"
# Top-level key of an imported checkpoint holding HF tensors span_bert has no module for
# (pooler, NSP head), so spanbert-export can give them back. fairseq ignores unknown keys.
CARRIED_KEY = "hf_carried_tensors"
# Top-level key of an imported checkpoint listing the heads it initialised fresh ("MLM head",
# "SBO head"), so spanbert-eval reports no figures for a head that never saw training.
FRESH_HEADS_KEY = "spanbert_fresh_heads"
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


# The SBO head's sizes: pretraining flags (max_pair_targets is the span_bert task's), which a
# fine-tuning task (sentence_prediction, span_qa) neither accepts nor needs.
PRETRAINING_ONLY_ARGS = ("max_pair_targets", "sbo_position_dim")


def fine_tuning_arch_flags(model_args):
    """fairseq-train flags that build this architecture for a fine-tuning task."""
    return arch_flags({k: v for k, v in model_args.items() if k not in PRETRAINING_ONLY_ARGS})


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


def save_checkpoint(path, cfg, model_state, carried, fresh_heads=()):
    """Write an imported checkpoint atomically."""
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
        FRESH_HEADS_KEY: list(fresh_heads),
    }
    save_atomically(state, path)


def load_checkpoint(path):
    """A span_bert checkpoint (imported or saved by fairseq-train) -> (cfg, model state, carried)."""
    state = load_span_bert_checkpoint(str(path))
    return state["cfg"], state["model"], state.get(CARRIED_KEY) or {}
