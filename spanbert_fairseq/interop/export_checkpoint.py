"""spanbert-export: a span_bert checkpoint -> a HuggingFace BERT directory.

Writes OUT/config.json, OUT/model.safetensors (`BertForPreTraining` keys: encoder and MLM head,
plus the pooler / NSP head if an import carried them), OUT/spanbert_sbo_head.safetensors (the SBO
head, which transformers has no class for), OUT/vocab.txt and tokenizer files. `AutoModel`,
`BertForMaskedLM` and `BertForQuestionAnswering` load the directory; spanbert-import reads it back,
SBO head included.

A fine-tuned checkpoint (a head in `classification_heads`, docs/DESIGN.md "Heads") exports as the
HF class of its head: a sentence head as `BertForSequenceClassification` (`bert.pooler.dense`,
`classifier`), a span head as `BertForQuestionAnswering` (`qa_outputs`); `--head` picks one where
the checkpoint holds several.
"""

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import save_file

from spanbert_text.errors import run_cli
from spanbert_text.files import atomic_path, write_text
from spanbert_text.tokenization import save_hf_tokenizer

from ..checkpoint_io import find_vocabulary_dir, vocabulary_file
from ..data.dictionary import BertDictionary
from ..models.heads import checkpoint_head_sizes
from ..models.span_bert import check_vocabulary_size
from . import span_bert_checkpoint as ckpt
from .architecture import hf_config_from_model_args
from .bert_layout import HF_CONFIG, HF_TOKENIZER_CONFIG, HF_VOCAB, SBO_FILE, span_bert_to_hf
from .errors import InteropError

WEIGHTS_NAME = "model.safetensors"


@dataclass
class ExportReport:
    out_dir: Path
    checkpoint: Path
    vocabulary: Path
    tensors: int  # in model.safetensors
    sbo_tensors: int  # in the SBO side file
    tokenizer_files: list
    architecture: str = "BertForPreTraining"

    def summary(self):
        tokenizer = ", ".join(self.tokenizer_files) or "no tokenizer files (SentencePiece vocabulary)"
        sbo = f"{SBO_FILE} ({self.sbo_tensors} tensors), " if self.sbo_tensors else ""
        return (
            f"exported {self.checkpoint} (vocabulary {self.vocabulary}) as {self.architecture} -> "
            f"{self.out_dir}: {HF_CONFIG}, {WEIGHTS_NAME} ({self.tensors} tensors), {sbo}{HF_VOCAB}, {tokenizer}"
        )


# Fine-tuning head kind -> (HF class, {span_bert key suffix: HF name}).
HF_HEADS = {
    "sentence": ("BertForSequenceClassification", {
        "dense.weight": "bert.pooler.dense.weight", "dense.bias": "bert.pooler.dense.bias",
        "out_proj.weight": "classifier.weight", "out_proj.bias": "classifier.bias",
    }),
    "span": ("BertForQuestionAnswering", {"out_proj.weight": "qa_outputs.weight", "out_proj.bias": "qa_outputs.bias"}),
}


def split_fine_tuning_head(checkpoint, model_state, head=None):
    """-> (state without fine-tuning heads, HF tensors of the chosen head, its HF class, num_labels);
    (state, {}, None, None) for a checkpoint without one."""
    sizes = checkpoint_head_sizes(model_state, "")
    state = {k: v for k, v in model_state.items() if not k.startswith("classification_heads.")}
    if head is None and not sizes:
        return state, {}, None, None
    if head is None and len(sizes) > 1:
        raise InteropError(f"{checkpoint} holds heads {', '.join(sorted(sizes))}: name one with --head")
    head = head if head is not None else next(iter(sizes))
    if head not in sizes:
        raise InteropError(f"{checkpoint} has no head {head!r} (its heads: {', '.join(sorted(sizes)) or 'none'})")
    kind, num_classes, inner_dim = sizes[head]
    hidden = model_state["encoder.bert.embeddings.word_embeddings.weight"].size(1)
    if kind == "sentence" and inner_dim != hidden:
        raise InteropError(f"{checkpoint}: head {head!r} has inner_dim {inner_dim}, but BERT's pooler is "
                           f"{hidden} x {hidden}; BertForSequenceClassification cannot hold it")
    architecture, names = HF_HEADS[kind]
    tensors = {hf: model_state[f"classification_heads.{head}.{suffix}"] for suffix, hf in names.items()}
    return state, tensors, architecture, num_classes


def export_checkpoint(checkpoint, out_dir, vocab=None, head=None):
    """Convert the span_bert `checkpoint` into a HF directory `out_dir`. Raises InteropError."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    cfg, model_state, carried = ckpt.load_checkpoint(checkpoint)
    vocab_path = Path(vocab) if vocab else Path(vocabulary_file(find_vocabulary_dir(
        checkpoint, cfg, how="give the dict.txt or vocab.txt it was trained with (--vocab)")))
    dictionary = BertDictionary.load(vocab_path)
    check_vocabulary_size(model_state, len(dictionary), checkpoint, vocab_path)
    model_state, head_tensors, architecture, num_labels = split_fine_tuning_head(checkpoint, model_state, head)
    try:
        hf, sbo = span_bert_to_hf(model_state)
    except ValueError as e:
        raise InteropError(f"{checkpoint}: {e}") from None
    hf.update(carried)
    hf.update(head_tensors)  # a fine-tuned pooler replaces one an import carried
    model_args = ckpt.model_args_of(cfg)

    out_dir.mkdir(parents=True, exist_ok=True)
    _save_tensors(hf, out_dir / WEIGHTS_NAME)
    if sbo:
        _save_tensors(sbo, out_dir / SBO_FILE)
    config = hf_config_from_model_args(model_args, len(dictionary), dictionary.pad())
    if architecture is not None:
        config["architectures"] = [architecture]
        config["num_labels"] = num_labels
    write_text(out_dir / HF_CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")
    dictionary.save_vocab_txt(out_dir / HF_VOCAB)
    lowercase = _tokenizer_lowercase(checkpoint.parent, dictionary)
    tokenizer_files = save_hf_tokenizer(dictionary, out_dir, lowercase, model_args["max_positions"])
    return ExportReport(out_dir, checkpoint, vocab_path, len(hf), len(sbo), tokenizer_files,
                        architecture or "BertForPreTraining")


def _tokenizer_lowercase(folder, dictionary):
    """Keep the lowercasing an import recorded; otherwise read it off the vocabulary."""
    config = folder / HF_TOKENIZER_CONFIG
    recorded = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    return recorded.get("do_lower_case", not dictionary.is_cased())


def _save_tensors(tensors, path):
    # safetensors wants contiguous tensors that share no memory; HF's own files say "pt".
    with atomic_path(path) as temporary:
        save_file({k: v.contiguous() for k, v in tensors.items()}, temporary, metadata={"format": "pt"})


def _parser():
    p = argparse.ArgumentParser(
        prog="spanbert-export",
        description="Convert a span_bert checkpoint into a HuggingFace BERT directory "
        "(transformers AutoModel / BertForMaskedLM / BertForQuestionAnswering load it).",
    )
    p.add_argument("checkpoint", help="a span_bert checkpoint (.pt) from spanbert-import or fairseq-train")
    p.add_argument("out", help="output directory")
    p.add_argument("--vocab", help="dict.txt or vocab.txt the model was trained with (default: "
                   "dict.txt beside the checkpoint, else in its training data directory)")
    p.add_argument("--head", help="the fine-tuning head to export, where the checkpoint holds several")
    return p


def run(argv=None):
    args = _parser().parse_args(argv)
    report = export_checkpoint(args.checkpoint, args.out, args.vocab, args.head)
    print(f"spanbert-export: {report.summary()}")


def main(argv=None):
    sys.exit(run_cli("spanbert-export", run, argv))


if __name__ == "__main__":
    main()
