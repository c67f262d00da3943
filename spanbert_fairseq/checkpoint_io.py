"""Reading checkpoints without running code from them, and writing them atomically.

A checkpoint is a pickle, and a pickle can name any function to call while it loads. Every file
this project reads (fairseq-train's checkpoints, spanbert-import's inputs and outputs, the hub's)
goes through `safe_load`: the file's globals are listed without building anything, anything
outside the allowlist below is refused with one line, and the rest loads with torch's restricted
unpickler (`weights_only=True`). A user who made a file with other types and trusts it names them
in SPANBERT_TRUSTED_GLOBALS (docs/reliability.md, "Security").
"""

import argparse
import importlib
import os
import pickle
import pickletools
import re
import zipfile

import numpy as np
import torch
from omegaconf import OmegaConf

from spanbert_text.errors import UserInputError
from spanbert_text.files import atomic_path

TRUSTED_GLOBALS_ENV = "SPANBERT_TRUSTED_GLOBALS"
VOCABULARY_FILES = ("dict.txt", "vocab.txt")


class PickledConfig:
    """Stands for a config class that a checkpoint names but this program need not import (the
    authors' fairseq-0.6 `fairseq.models.pair_bert.BertConfig`): its attributes, nothing else."""


def _numpy_scalar_globals():
    # fairseq's meters and best-loss records can be numpy scalars; numpy 1 and 2 name them differently.
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    dtype_classes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.bool_)]
    return [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"), np.dtype,
            *dtype_classes]


# Beyond torch's own (tensors, storages, OrderedDict): what legitimate files of ours hold.
ALLOWED_GLOBALS = [
    argparse.Namespace,  # fairseq's `args` in checkpoints written before (or without) hydra configs
    (PickledConfig, "fairseq.models.pair_bert.BertConfig"),  # the authors' model.pt
    *_numpy_scalar_globals(),
]


class UnsafeCheckpointError(UserInputError):
    """A checkpoint that needs a type outside the allowlist; nothing of it was built."""


class UnreadableCheckpointError(UserInputError):
    """A file that is not a (complete) torch checkpoint."""


def safe_load(path, map_location="cpu"):
    """torch.load with the restricted unpickler and the allowlist. UnsafeCheckpointError names the
    file and every global it needs beyond the allowlist; UnreadableCheckpointError a broken file."""
    allowed = ALLOWED_GLOBALS + _trusted_globals()
    with torch.serialization.safe_globals(allowed):
        try:
            refused = sorted(_globals_torch_would_refuse(path, allowed))
        except pickle.UnpicklingError as e:  # an opcode the restricted unpickler does not run
            raise UnsafeCheckpointError(_refusal(path, str(e))) from None
        if refused:
            raise UnsafeCheckpointError(_refusal(path, ", ".join(refused)))
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            unsupported = re.search(r"Unsupported[^\n]*", str(e))
            if unsupported:
                raise UnsafeCheckpointError(_refusal(path, unsupported.group(0))) from None
            raise UnreadableCheckpointError(f"cannot read {path} as a torch checkpoint: {e}") from None
        except (RuntimeError, EOFError, ValueError) as e:  # truncated, or not torch's format at all
            raise UnreadableCheckpointError(f"cannot read {path} as a torch checkpoint: {e}") from None


def _refusal(path, what):
    return (
        f"{path}: refused to load: it needs {what}, outside what a checkpoint holds (tensors, numbers, "
        f"strings, configs), and unpickling it could run code. If you made this file and trust it, "
        f"allow those types with {TRUSTED_GLOBALS_ENV}=module.Name[,module.Name]"
    )


def _trusted_globals():
    names = [n.strip() for n in os.environ.get(TRUSTED_GLOBALS_ENV, "").split(",") if n.strip()]
    found = []
    for name in names:
        module, _, attribute = name.rpartition(".")
        try:
            found.append((getattr(importlib.import_module(module), attribute), name))
        except (ImportError, AttributeError, ValueError):
            raise UserInputError(f"{TRUSTED_GLOBALS_ENV}: cannot import {name!r}") from None
    return found


def _globals_torch_would_refuse(path, allowed):
    """The module.name globals of the file torch's restricted unpickler would refuse, read statically."""
    with open(path, "rb") as f:
        if zipfile.is_zipfile(f):
            return set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        f.seek(0)
        names = _legacy_globals(path, f)
    safe = {name for item in allowed for name in ([item[1]] if isinstance(item, tuple) else
                                                   [f"{item.__module__}.{item.__qualname__}"])}
    # torch's own rebuild functions and storages are torch.*; torch enforces its allowlist on them.
    return {n for n in names if n not in safe and not n.startswith("torch.") and n != "collections.OrderedDict"}


def _legacy_globals(path, f):
    """Globals of torch's legacy (pre-zip) format: magic number, protocol, system info, then the object."""
    names = set()
    for _ in range(4):
        try:
            for opcode, arg, _ in pickletools.genops(f):
                if opcode.name in ("GLOBAL", "INST"):
                    names.add(arg.replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL":
                    names.add("a STACK_GLOBAL opcode")
        except (ValueError, EOFError) as e:
            raise UnreadableCheckpointError(f"cannot read {path} as a torch checkpoint: not a pickle ({e})") from None
    return names


def load_fairseq_checkpoint(path):
    """A fairseq checkpoint as fairseq's `load_checkpoint_to_cpu` returns it (cfg as an OmegaConf
    config, old layouts upgraded), read through `safe_load`."""
    from fairseq import checkpoint_utils

    state = safe_load(path)
    if state.get("cfg") is not None:
        state["cfg"] = OmegaConf.create(state["cfg"], flags={"allow_objects": True})
    return checkpoint_utils._upgrade_state_dict(state)


def load_span_bert_checkpoint(path):
    """A span_bert checkpoint (fairseq-train's or spanbert-import's) -> its state, cfg an OmegaConf
    config; UserInputError for a missing file or another model's checkpoint."""
    from fairseq.models import ARCH_MODEL_NAME_REGISTRY

    if not os.path.isfile(path):
        raise UserInputError(f"checkpoint not found: {path}")
    state = load_fairseq_checkpoint(path)
    model_cfg = state["cfg"].get("model") if state.get("cfg") is not None else None
    name = model_cfg.get("_name") if model_cfg is not None else None
    if ARCH_MODEL_NAME_REGISTRY.get(name, name) != "span_bert":
        raise UserInputError(f"{path} is not a span_bert checkpoint (its model is {name!r})")
    return state


def vocabulary_file(directory):
    """dict.txt, else vocab.txt, in `directory`; None if it holds neither."""
    for name in VOCABULARY_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def find_vocabulary_dir(checkpoint, cfg, data_dir=None, how="give the directory that holds it"):
    """The first directory with a vocabulary: beside the checkpoint, `data_dir`, then the data
    directory the checkpoint was trained on (fairseq-train records it). `how` ends the error."""
    from fairseq import utils

    candidates = [(os.path.dirname(os.path.abspath(checkpoint)), "beside the checkpoint")]
    if data_dir is not None:
        candidates.append((os.path.abspath(data_dir), "the given data directory"))
    task = cfg.get("task") if cfg is not None else None
    if task is not None and task.get("data"):
        data = utils.split_paths(task.get("data"))[0]
        candidates.append((data, "the data the checkpoint was trained on"))
        candidates.append((os.path.join(data, "input0"), "its input0/, sentence_prediction's layout"))
    for directory, _ in candidates:
        if vocabulary_file(directory) is not None:
            return directory
    looked = "; ".join(f"{d} ({why})" for d, why in candidates)
    raise UserInputError(f"no vocabulary ({' or '.join(VOCABULARY_FILES)}) for {checkpoint}: looked in {looked}; {how}")


def save_atomically(obj, path):
    """torch.save so that `path` holds the old file or the whole new one, never a part."""
    with atomic_path(path) as temporary:
        torch.save(obj, temporary)
