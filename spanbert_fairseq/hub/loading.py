"""`from_pretrained`: a checkpoint, its vocabulary and its tokenizer, found the way fairseq users expect.

RoBERTa's convention: `from_pretrained(model_name_or_path, checkpoint_file, data_name_or_path)`.
The vocabulary (dict.txt or vocab.txt, with tokenizer.json / vocab.txt / spm.model beside it) is
looked for beside the checkpoint, then in `data_name_or_path`, then in the data directory the
checkpoint was trained on (fairseq-train records it), so a save directory that holds only
checkpoints loads as it is.
"""

import os

from spanbert_text.errors import UserInputError
from spanbert_text.tokenization import load_text_tokenizer

from ..checkpoint_io import find_vocabulary_dir, load_span_bert_checkpoint, vocabulary_file
from ..data.dictionary import BertDictionary
from ..models.span_bert import SpanBertModel, has_pretraining_heads
from .hub_interface import SpanBertHubInterface

# What from_pretrained loads when no checkpoint_file is named: fairseq-train's best, then its
# last, then the file spanbert-import writes.
DEFAULT_CHECKPOINTS = ("checkpoint_best.pt", "checkpoint_last.pt", "model.pt")


def from_pretrained(model_name_or_path, checkpoint_file=None, data_name_or_path=None, **overrides):
    """-> SpanBertHubInterface in eval mode. `overrides` replace model config values (dropout=0.0 ...)."""
    path = find_checkpoint(model_name_or_path, checkpoint_file)
    state = load_span_bert_checkpoint(path)
    cfg = state["cfg"]
    vocabulary_dir = find_vocabulary_dir(
        path, cfg, _data_dir(path, data_name_or_path),
        how="pass the directory spanbert-preprocess wrote: from_pretrained(model_dir, checkpoint_file, DATA_DIR)",
    )
    dictionary = BertDictionary.load(vocabulary_file(vocabulary_dir))
    text_tokenizer = load_text_tokenizer(vocabulary_dir, dictionary)
    for name, value in overrides.items():
        if name not in cfg.model:
            raise UserInputError(f"from_pretrained: {name!r} is not a model option of {path}")
        cfg.model[name] = value
    # A pretraining checkpoint brings its MLM / SBO heads, a fine-tuned one its registered heads.
    model = SpanBertModel.for_dictionary(cfg.model, dictionary, has_pretraining_heads(state["model"]))
    model.register_checkpoint_heads(state["model"])
    model.load_state_dict(state["model"], strict=True)
    return SpanBertHubInterface(cfg, model, dictionary, text_tokenizer)


def find_checkpoint(model_name_or_path, checkpoint_file=None):
    """The checkpoint file: model_name_or_path itself, or checkpoint_file (or a default) inside it."""
    model_path = os.path.abspath(os.path.expanduser(str(model_name_or_path)))
    if os.path.isfile(model_path) and checkpoint_file is None:
        return model_path
    names = DEFAULT_CHECKPOINTS if checkpoint_file is None else (checkpoint_file,)
    for name in names:
        path = os.path.join(model_path, os.path.expanduser(str(name)))  # an absolute name stays as it is
        if os.path.isfile(path):
            return path
    raise UserInputError(f"checkpoint not found in {model_path}: looked for {', '.join(map(str, names))}")


def _data_dir(checkpoint, data_name_or_path):
    if data_name_or_path is None:
        return None
    data = os.path.expanduser(str(data_name_or_path))
    # fairseq's convention: a path starting with "." is relative to the model directory.
    return os.path.join(os.path.dirname(checkpoint), data) if data.startswith(".") else data
