"""spanbert-glue: a GLUE task directory as distributed -> the binaries fairseq's `sentence_prediction`
task reads, tokenized with a checkpoint's vocabulary.

    spanbert-glue glue_data/RTE --vocab checkpoints/dict.txt --destdir RTE-bin

Reads train.tsv and dev.tsv (test.tsv has no labels), recognises the task by its header (RTE,
MRPC, SST-2, QNLI, WNLI) and writes DEST/input0 (first sentences), DEST/input1 (second sentences
of a pair task) and DEST/label, each with dict.txt and train / valid .bin/.idx: byte for byte what
fairseq-preprocess writes from the same pieces and labels (input0/dict.txt is the vocabulary with
BERT ids, with the tokenizer beside it for the hub; label/dict.txt fairseq's own). A pair longer
than --max-len tokens ([CLS] a [SEP] b [SEP]) loses tokens from the end of its longer sentence
first, as BERT's GLUE code truncates.
"""

import argparse
import os
import shutil
import sys
import time

import numpy as np

from spanbert_text.errors import run_cli
from spanbert_text.vocabulary import Vocabulary

from . import PreprocessError, encoders
from .binaries import DatasetWriter, StagedOutput
from .cli import usable_cores

# Header -> (task, sentence columns, label column), as the GLUE distribution spells them.
FORMATS = {
    ("index", "sentence1", "sentence2", "label"): ("RTE/WNLI", (1, 2), 3),
    ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"): ("MRPC", (3, 4), 0),
    ("sentence", "label"): ("SST-2", (0,), 1),
    ("index", "question", "sentence", "label"): ("QNLI", (1, 2), 3),
}
SPLITS = (("train.tsv", "train"), ("dev.tsv", "valid"))
OUTPUT_DIRS = ("input0", "input1", "label")
FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # what fairseq's Dictionary puts first
PADDING_FACTOR = 8  # fairseq-preprocess's default: a built dictionary's size is a multiple of 8


class LabelDictionary:
    """The dict.txt fairseq-preprocess builds from train's labels: fairseq's 4 specials first, labels
    by descending count (ties alphabetical), padded with madeupwordNNNN to a multiple of 8."""

    def __init__(self, train_labels):
        labels, counts = np.unique(np.array(train_labels, dtype=object), return_counts=True)
        order = sorted(range(len(labels)), key=lambda i: -counts[i])  # stable: ties stay alphabetical
        self.labels = [str(labels[i]) for i in order]
        self.counts = [int(counts[i]) for i in order]
        size = len(FAIRSEQ_SPECIALS) + len(self.labels)
        padding = [f"madeupword{i:04d}" for i in range(-size % PADDING_FACTOR)]
        self.symbols = list(FAIRSEQ_SPECIALS) + self.labels + padding
        self.ids = {label: i for i, label in enumerate(self.symbols)}

    def __len__(self):
        return len(self.symbols)

    def eos(self):
        return FAIRSEQ_SPECIALS.index("</s>")

    def unk(self):
        return FAIRSEQ_SPECIALS.index("<unk>")

    def save(self, path):
        lines = [f"{label} {count}\n" for label, count in zip(self.labels, self.counts)]
        lines += [f"{word} 0\n" for word in self.symbols[len(FAIRSEQ_SPECIALS) + len(self.labels):]]
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(lines))


def get_parser():
    p = argparse.ArgumentParser(
        prog="spanbert-glue",
        description="Tokenize a GLUE task directory (train.tsv, dev.tsv as distributed) into the binaries "
        "`fairseq-train --task sentence_prediction` reads, with a span_bert checkpoint's vocabulary.",
    )
    p.add_argument("task_dir", help="the GLUE task directory, e.g. glue_data/RTE")
    p.add_argument("--vocab", required=True, metavar="FILE",
                   help="the checkpoint's vocabulary: dict.txt / vocab.txt (WordPiece) or a SentencePiece .model")
    p.add_argument("--destdir", required=True, help="output directory (input0/, input1/, label/)")
    p.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                   help="lowercase before WordPiece (default: as the vocabulary implies)")
    p.add_argument("--max-len", type=int, default=512, metavar="N",
                   help="tokens per example, [CLS] and [SEP]s included (default 512; the authors' GLUE: 128)")
    p.add_argument("--force", action="store_true", help="replace an earlier output in --destdir")
    p.add_argument("--workers", type=int, default=usable_cores(), help="tokenizer threads (default: all usable cores)")
    return p


def read_tsv(path):
    """(header, rows, first data line number): rows split on tabs; a row whose column count is not
    the header's stops with its file and line."""
    if not os.path.isfile(path):
        raise PreprocessError(f"{path}: no such file (a GLUE task directory holds train.tsv and dev.tsv)")
    with open(path, encoding="utf-8-sig", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise PreprocessError(f"{path}: empty file")
    header = tuple(lines[0].rstrip("\r").split("\t"))
    rows = [line.rstrip("\r").split("\t") for line in lines[1:]]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise PreprocessError(
                f"{path}:{number}: {len(row)} tab-separated columns, the header has {len(header)}; "
                f"a tab inside a sentence? Replace it with a space"
            )
    return header, rows


def task_format(path, header):
    if header not in FORMATS:
        known = "; ".join(f"{task}: {' | '.join(h)}" for h, (task, _, _) in FORMATS.items())
        raise PreprocessError(f"{path}:1: not a GLUE header this tool knows ({' | '.join(header)}); known: {known}")
    return FORMATS[header]


def load_encoder(args):
    if args.vocab.endswith(".model"):
        return encoders.load_sentencepiece(args.vocab, args.workers)
    if Vocabulary.load(args.vocab).is_sentencepiece():
        beside = os.path.join(os.path.dirname(args.vocab), "spm.model")
        if not os.path.isfile(beside):
            raise PreprocessError(f"{args.vocab}: a SentencePiece vocabulary; pass its .model as --vocab")
        return encoders.load_sentencepiece(beside, args.workers)
    return encoders.load_wordpiece(args.vocab, args.lowercase)


def truncate(first, second, max_len):
    """BERT's _truncate_seq_pair: drop the longer sentence's last token until the example fits."""
    specials = 2 if second is None else 3
    while len(first) + (len(second) if second is not None else 0) + specials > max_len:
        if second is not None and len(second) > len(first):
            second.pop()
        else:
            first.pop()


def encode_split(encoder, rows, columns, max_len):
    """-> one list of id lists per sentence column, and how many rows were truncated."""
    sentences = []
    for column in columns:
        flat, lengths = encoder.encode([row[column] for row in rows])
        offsets = np.cumsum(lengths) - lengths
        sentences.append([flat[o:o + n].tolist() for o, n in zip(offsets, lengths)])
    truncated = 0
    for i in range(len(rows)):
        pieces = [s[i] for s in sentences]
        before = sum(map(len, pieces))
        truncate(pieces[0], pieces[1] if len(pieces) > 1 else None, max_len)
        truncated += sum(map(len, pieces)) < before
    return sentences, truncated


def write_items(prefix, dictionary, items):
    """One item per row: its ids, then eos, as fairseq-preprocess writes a line."""
    lengths = np.array([len(i) for i in items], dtype=np.int64)
    flat = np.fromiter((t for i in items for t in i), dtype=np.int64, count=int(lengths.sum()))
    writer = DatasetWriter(prefix, dictionary)
    writer.add_documents([np.arange(len(items))], flat, np.cumsum(lengths) - lengths, lengths)
    writer.close()


def check_labels(path, labels, dictionary, train_path):
    for number, label in enumerate(labels, start=2):
        if label not in dictionary.labels:
            raise PreprocessError(
                f"{path}:{number}: label {label!r} never occurs in {train_path} (its labels: "
                f"{', '.join(sorted(dictionary.labels))}); a classifier cannot learn it: fix the row or the file"
            )


def prepare_destination(destdir, force):
    if os.path.isdir(destdir) and os.listdir(destdir):
        if not force:
            raise PreprocessError(f"{destdir}: not empty; choose another --destdir or pass --force to replace it")
        for name in OUTPUT_DIRS:
            shutil.rmtree(os.path.join(destdir, name), ignore_errors=True)
    elif os.path.exists(destdir) and not os.path.isdir(destdir):
        raise PreprocessError(f"{destdir}: exists and is not a directory")


def run(args):
    start = time.time()
    if args.max_len < 4:
        raise PreprocessError(f"--max-len must be at least 4 ([CLS] a [SEP] b [SEP]), got {args.max_len}")
    os.environ["RAYON_NUM_THREADS"] = str(args.workers)
    splits = {}
    for name, split in SPLITS:
        path = os.path.join(args.task_dir, name)
        header, rows = read_tsv(path)
        splits[split] = (path, task_format(path, header), rows)
    (train_path, (task, columns, label_column), train_rows), (dev_path, dev_format, dev_rows) = (
        splits["train"], splits["valid"])
    if dev_format[0] != task:
        raise PreprocessError(f"{dev_path}:1: a {dev_format[0]} header, but {train_path} is {task}'s")
    labels = LabelDictionary([row[label_column] for row in train_rows])
    check_labels(dev_path, [row[label_column] for row in dev_rows], labels, train_path)
    prepare_destination(args.destdir, args.force)
    encoder = load_encoder(args)
    staged = StagedOutput(args.destdir)
    try:
        truncated = write_outputs(staged.path, encoder, labels, splits, columns, label_column, args.max_len)
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    print(summary(args, task, columns, labels, encoder, splits, truncated, time.time() - start), flush=True)


def write_outputs(root, encoder, labels, splits, columns, label_column, max_len):
    names = OUTPUT_DIRS[: len(columns)] + ("label",)
    for name in names:
        os.makedirs(os.path.join(root, name))
    encoder.dictionary.save(os.path.join(root, "input0", "dict.txt"))
    encoder.save(os.path.join(root, "input0"))  # the tokenizer, for the hub's encode()
    if len(columns) > 1:
        encoder.dictionary.save(os.path.join(root, "input1", "dict.txt"))
    labels.save(os.path.join(root, "label", "dict.txt"))
    truncated = 0
    for split, (_, _, rows) in splits.items():
        sentences, cut = encode_split(encoder, rows, columns, max_len)
        truncated += cut
        for name, items in zip(OUTPUT_DIRS, sentences):
            write_items(os.path.join(root, name, split), encoder.dictionary, items)
        write_items(os.path.join(root, "label", split), labels, [[labels.ids[row[label_column]]] for row in rows])
    return truncated


def summary(args, task, columns, labels, encoder, splits, truncated, seconds):
    dest = os.path.abspath(args.destdir)
    kind = "sentence pairs" if len(columns) > 1 else "sentences"
    counts = ", ".join(f"{label} {count:,}" for label, count in zip(labels.labels, labels.counts))
    flags = (f"fairseq-train {dest} --user-dir spanbert_fairseq --task sentence_prediction --criterion "
             f"sentence_prediction --num-classes {len(labels.labels)} --init-token {encoder.dictionary.cls()} "
             f"--max-positions 512")
    return (
        f"spanbert-glue: {task}, train {len(splits['train'][2]):,} / valid {len(splits['valid'][2]):,} {kind}, "
        f"{len(labels.labels)} labels ({counts}), {truncated:,} examples truncated to {args.max_len} tokens, "
        f"{encoder.describe()}, {seconds:.1f} s -> {dest}; train with: {flags}"
    )


def main(argv=None):
    return run_cli("spanbert-glue", lambda argv: run(get_parser().parse_args(argv)), argv)


if __name__ == "__main__":
    sys.exit(main())
