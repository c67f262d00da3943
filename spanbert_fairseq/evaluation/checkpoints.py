"""The checkpoints spanbert-eval compares, each loaded as a span_bert model over the data's vocabulary.

Accepted: a checkpoint file of fairseq-train or spanbert-import, a directory holding one
(checkpoint_best.pt, then checkpoint_last.pt, then model.pt), and a HuggingFace BERT directory or
weights file, which goes through spanbert-import into a temporary directory first.
"""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from spanbert_text.errors import UserInputError

from ..checkpoint_io import find_vocabulary_dir, load_span_bert_checkpoint, vocabulary_file
from ..data.dictionary import BertDictionary
from ..hub.loading import find_checkpoint
from ..interop.bert_layout import HF_CONFIG, HF_VOCAB, HF_WEIGHTS
from ..interop.import_checkpoint import import_checkpoint
from ..interop.span_bert_checkpoint import FRESH_HEADS_KEY
from ..models.span_bert import SpanBertModel, VocabularyMismatchError, check_vocabulary_size


@dataclass
class EvaluatedModel:
    name: str  # the argument as given: how tables, JSON and plots name it
    checkpoint: str  # the file the weights came from
    model: SpanBertModel  # in eval mode
    tokens_per_sample: int  # the example length it was trained with (the task's flag)
    mlm: bool  # the MLM head holds trained weights
    sbo: bool  # the SBO head holds trained weights
    notes: list = field(default_factory=list)  # why a head has no figures


def load_model(argument, dictionary, dict_path):
    """A checkpoint argument -> EvaluatedModel over `dictionary` (the data's dict.txt at `dict_path`)."""
    path = Path(argument).expanduser()
    if not path.exists():
        raise UserInputError(f"checkpoint not found: {argument}")
    if _is_huggingface(path):
        with tempfile.TemporaryDirectory(prefix="spanbert-eval-") as imported:
            report = import_checkpoint(path, imported, vocab=_huggingface_vocabulary(path, dict_path))
            return _load_span_bert(argument, str(report.checkpoint), dictionary, dict_path,
                                   source=str(report.source))
    return _load_span_bert(argument, find_checkpoint(path), dictionary, dict_path)


def _is_huggingface(path):
    if path.is_file():
        return path.name in HF_WEIGHTS or path.suffix == ".safetensors"
    return (path / HF_CONFIG).is_file() and any((path / name).is_file() for name in HF_WEIGHTS)


def _huggingface_vocabulary(path, dict_path):
    # The released SpanBERT directories have no vocab.txt; their data was binarized with BERT
    # cased's, so the data's own dict.txt is the vocabulary (the import checks its size).
    folder = path if path.is_dir() else path.parent
    return folder / HF_VOCAB if (folder / HF_VOCAB).is_file() else dict_path


def _load_span_bert(name, checkpoint, dictionary, dict_path, source=None):
    state = load_span_bert_checkpoint(checkpoint)
    cfg = state["cfg"]
    source = source or checkpoint
    check_vocabulary_size(state["model"], len(dictionary), source, dict_path)
    _check_same_vocabulary(checkpoint, cfg, dictionary, dict_path, source)
    model = SpanBertModel.for_dictionary(cfg.model, dictionary)
    model.load_state_dict(state["model"], strict=True)
    model.eval()
    fresh = set(state.get(FRESH_HEADS_KEY) or ())
    criterion = cfg.get("criterion") or {}
    notes = [f"{head} initialised fresh by the import (not in the checkpoint): no {head[:3]} figures"
             for head in sorted(fresh)]
    untrained_sbo = criterion.get("sbo_weight") == 0
    if untrained_sbo:
        notes.append("trained with --sbo-weight 0 (SBO head untrained): no SBO figures")
    task = cfg.get("task") or {}
    return EvaluatedModel(
        name=name, checkpoint=source, model=model, tokens_per_sample=task.get("tokens_per_sample", 512),
        mlm="MLM head" not in fresh, sbo="SBO head" not in fresh and not untrained_sbo, notes=notes,
    )


def _check_same_vocabulary(checkpoint, cfg, dictionary, dict_path, source):
    """Same size is not same vocabulary (BERT cased and uncased differ in a few hundred entries):
    compare with the checkpoint's own vocabulary file where one is at hand."""
    own = _own_vocabulary_file(checkpoint, cfg)
    if own is None:
        return
    symbols = BertDictionary.load(own).symbols
    if symbols == dictionary.symbols:
        return
    line = next(i for i, (a, b) in enumerate(zip(symbols, dictionary.symbols)) if a != b)
    raise VocabularyMismatchError(
        f"vocabulary mismatch: {source} was trained with {own}, whose line {line + 1} is {symbols[line]!r}, "
        f"but {dict_path} has {dictionary.symbols[line]!r} there; evaluate on data binarized with the "
        f"checkpoint's vocabulary (spanbert-preprocess --vocab {own})"
    )


def _own_vocabulary_file(checkpoint, cfg):
    """The vocabulary beside the checkpoint, else in the data directory it was trained on; None if
    neither has one (the size check is then all there is)."""
    try:
        return vocabulary_file(find_vocabulary_dir(checkpoint, cfg))
    except UserInputError:
        return None
