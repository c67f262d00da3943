"""spanbert-import: a BERT or SpanBERT checkpoint -> a directory fairseq-train and the hub load.

Reads a HuggingFace BERT directory (or its weights file) or the authors' fairseq-0.6 SpanBERT
`model.pt`; writes OUT/model.pt (a span_bert checkpoint), OUT/dict.txt (BERT ids kept),
OUT/vocab.txt and tokenizer files, and OUT/train_args.txt (the fairseq-train flags that build
this architecture). Heads the checkpoint lacks start fresh, and the tool says which.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from spanbert_text.errors import run_cli
from spanbert_text.files import write_text
from spanbert_text.tokenization import save_hf_tokenizer

from ..data.dictionary import BertDictionary
from ..models.span_bert import SpanBertModel
from . import span_bert_checkpoint as ckpt
from .architecture import model_args_from_hf_config
from .bert_layout import HEADS, SBO_KEYS, WORD_EMBEDDINGS, head_keys, hf_name, split_hf_state
from .errors import InteropError
from .readers import read_bert_checkpoint

CHECKPOINT_NAME = "model.pt"
TRAIN_ARGS_NAME = "train_args.txt"


@dataclass
class ImportReport:
    checkpoint: Path  # the span_bert checkpoint written
    source_kind: str
    source: Path
    model_args: dict
    vocab_size: int
    loaded_heads: list
    fresh_heads: list
    carried: list  # HF tensor names kept for export only (pooler, NSP head)
    ignored: list  # HF tensor names span_bert has no use for (e.g. a fine-tuned task head)

    def notes(self):
        """The one message about what did not come from the checkpoint, or None."""
        parts = []
        if self.fresh_heads:
            parts.append(
                f"initialised fresh (not in the checkpoint): {', '.join(self.fresh_heads)}; "
                f"continued pretraining trains them from scratch"
            )
        if self.ignored:
            parts.append(f"not imported (span_bert has no such module): {', '.join(self.ignored)}")
        return "; ".join(parts) or None

    def summary(self):
        a = self.model_args
        return (
            f"imported {self.source_kind} {self.source} ({a['encoder_layers']} layers, "
            f"hidden {a['encoder_embed_dim']}, {a['encoder_attention_heads']} heads, "
            f"FFN {a['encoder_ffn_embed_dim']}, {a['max_positions']} positions, "
            f"vocabulary {self.vocab_size}; heads loaded: {', '.join(self.loaded_heads) or 'none'}"
            f"; fresh: {', '.join(self.fresh_heads) or 'none'}) -> {self.checkpoint}"
        )


def import_checkpoint(source, out_dir, vocab=None, config=None, seed=1):
    """Convert `source` into `out_dir`; returns an ImportReport. Raises InteropError.

    Everything is checked before the first file is written, so a refused checkpoint leaves
    no half-written directory.
    """
    src = read_bert_checkpoint(source, config)
    model_args = model_args_from_hf_config(src.config, src.config_origin)
    tensors, carried, tied, ignored = split_hf_state(src.tensors)
    _resolve_tied_projections(tensors, tied, src.weights)
    vocab_path = _vocabulary_path(vocab, src)
    dictionary = BertDictionary.load(vocab_path)
    _check_vocabulary(tensors, src.config, len(dictionary), vocab_path, src.weights)
    model_args.update(_sbo_sizes(tensors))
    out_dir = Path(out_dir)
    cfg = ckpt.training_cfg(out_dir, model_args)
    torch.manual_seed(seed)  # fresh heads are reproducible
    model = SpanBertModel.for_dictionary(cfg.model, dictionary)
    state, loaded, fresh = _overlay(model.state_dict(), tensors, src.config_origin)
    model_args = ckpt.model_args_of(cfg)

    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt.save_checkpoint(out_dir / CHECKPOINT_NAME, cfg, state, carried, fresh)
    dictionary.save(out_dir / "dict.txt")
    dictionary.save_vocab_txt(out_dir / "vocab.txt")
    lowercase = src.tokenizer_config.get("do_lower_case", not dictionary.is_cased())
    save_hf_tokenizer(dictionary, out_dir, lowercase, model_args["max_positions"])
    write_text(out_dir / TRAIN_ARGS_NAME, " ".join(ckpt.arch_flags(model_args)) + "\n")
    return ImportReport(
        checkpoint=out_dir / CHECKPOINT_NAME, source_kind=src.kind, source=src.weights,
        model_args=model_args, vocab_size=len(dictionary), loaded_heads=loaded,
        fresh_heads=fresh, carried=sorted(carried), ignored=ignored,
    )


def _vocabulary_path(vocab, src):
    if vocab is not None:
        return Path(vocab)
    if src.vocab is None:
        raise InteropError(
            f"no vocab.txt beside {src.weights}: give the vocabulary the model was trained with "
            f"(--vocab; the released SpanBERT models use BERT cased's vocab.txt)"
        )
    return src.vocab


def _resolve_tied_projections(tensors, tied, weights):
    """span_bert ties both heads' output projections to the word embeddings: a checkpoint whose
    projections differ from them is a different model, not a spelling of this one."""
    embeddings = tensors.get(WORD_EMBEDDINGS)
    mlm_bias = "encoder.mlm_head.bias"
    if "cls.predictions.decoder.bias" in tied and mlm_bias not in tensors:
        tensors[mlm_bias] = tied["cls.predictions.decoder.bias"]  # older exports kept only this
    for name, tensor in tied.items():
        reference = tensors.get(mlm_bias) if name.endswith(".bias") else embeddings
        if reference is not None and not torch.equal(tensor, reference):
            raise InteropError(
                f"{weights}: {name} differs from the tensor it should be tied to; span_bert ties "
                f"the output projection to the word embeddings, so it cannot hold this model"
            )


def _check_vocabulary(tensors, config, vocab_size, vocab_path, weights):
    embeddings = tensors.get(WORD_EMBEDDINGS)
    if embeddings is None:
        return  # reported with the other missing encoder tensors
    rows = embeddings.size(0)
    if config.get("vocab_size", rows) != rows:
        raise InteropError(
            f"config vocab_size={config['vocab_size']} but the word embeddings in {weights} "
            f"have {rows} rows"
        )
    if vocab_size != rows:
        raise InteropError(
            f"{vocab_path} has {vocab_size} entries but the word embeddings in {weights} have "
            f"{rows} rows: give the vocabulary the model was trained with (--vocab)"
        )


def _sbo_sizes(tensors):
    """The SBO head's table sizes, read off a checkpoint that has the head."""
    table = tensors.get(SBO_KEYS["position_embeddings.weight"])
    if table is None:
        return {}
    return {"max_pair_targets": table.size(0), "sbo_position_dim": table.size(1)}


def _overlay(expected, found, where):
    """The freshly built model's state with every found tensor put in its place.

    Returns (state, heads loaded, heads initialised fresh). Anything that does not fit the
    architecture the config describes is an InteropError naming the tensors.
    """
    extra = sorted(set(found) - set(expected))
    if extra:
        raise InteropError(
            f"the checkpoint has tensors {where} does not describe: {_some(map(hf_name, extra))}"
        )
    wrong = [
        f"{hf_name(k)} is {_shape(found[k])} in the checkpoint but {_shape(v)} by the config"
        for k, v in expected.items() if k in found and found[k].shape != v.shape
    ]
    if wrong:
        raise InteropError(f"{where} does not describe the checkpoint: {_some(wrong)}")
    in_a_head = {k for head in HEADS for k in head_keys(head)}
    missing = [hf_name(k) for k in expected if k not in found and k not in in_a_head]
    if missing:
        raise InteropError(f"the checkpoint is not a complete BERT encoder: it lacks {_some(missing)}")
    loaded, fresh = [], []
    for head in HEADS:
        present = [k in found for k in head_keys(head)]
        if all(present):
            loaded.append(head)
        elif not any(present):
            fresh.append(head)
        else:
            lacking = [hf_name(k) for k in head_keys(head) if k not in found]
            raise InteropError(f"the checkpoint has part of the {head}: it lacks {_some(lacking)}")
    return {k: found.get(k, v) for k, v in expected.items()}, loaded, fresh


def _shape(tensor):
    return "x".join(map(str, tensor.shape))


def _some(items, n=3):
    items = list(items)
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _parser():
    p = argparse.ArgumentParser(
        prog="spanbert-import",
        description="Convert a HuggingFace BERT / SpanBERT checkpoint or the authors' fairseq-0.6 "
        "SpanBERT model.pt into a span_bert checkpoint directory for fairseq-train and the hub.",
    )
    p.add_argument("checkpoint", help="a HuggingFace BERT directory, its weights file, or model.pt")
    p.add_argument("out", help="output directory (model.pt, dict.txt, vocab.txt, train_args.txt)")
    p.add_argument("--vocab", help="vocab.txt or dict.txt, where the checkpoint has none beside it")
    p.add_argument("--config", help="config.json to use instead of the one beside the checkpoint")
    p.add_argument("--seed", type=int, default=1, help="seed for heads initialised fresh")
    return p


def run(argv=None):
    args = _parser().parse_args(argv)
    report = import_checkpoint(args.checkpoint, args.out, args.vocab, args.config, args.seed)
    if report.notes():
        print(f"spanbert-import: note: {report.notes()}")
    flags = (Path(args.out) / TRAIN_ARGS_NAME).read_text().strip()
    print(f"spanbert-import: fairseq-train flags for this model ({TRAIN_ARGS_NAME}): {flags}")
    print(f"spanbert-import: {report.summary()}")


def main(argv=None):
    sys.exit(run_cli("spanbert-import", run, argv))


if __name__ == "__main__":
    main()
