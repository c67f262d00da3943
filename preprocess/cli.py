"""spanbert-preprocess: raw text -> dict.txt + fairseq mmap binaries for `--task span_bert`.

    spanbert-preprocess corpus.txt --vocab bert-base-cased/vocab.txt --valid-fraction 0.01 --destdir data-bin
    spanbert-preprocess a.txt.gz b.txt.gz --train-wordpiece 30000 --valid dev.txt --shards 4 --destdir data-bin

Each input line becomes one item (its token ids, then [SEP]); a blank line between documents
becomes an item holding [SEP] alone. Lines are kept whole: the span_bert task packs lines into
blocks and splits a line longer than a block itself, so no text is lost here.
"""

import argparse
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from spanbert_text.errors import run_cli

from . import PreprocessError, encoders
from .binaries import DatasetWriter, StagedOutput, check_output_dir
from .text_input import TextReader, check_input_files

# A batch handed to the tokenizer at once: large enough to keep every worker busy.
BATCH_LINES = 10_000
BATCH_CHARS = 4 << 20
PROGRESS_SECONDS = 10
MIN_DOCUMENT_TOKENS = 2


def usable_cores():
    # The cores this process may run on (a batch scheduler may grant fewer than the machine has).
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def get_parser():
    p = argparse.ArgumentParser(
        prog="spanbert-preprocess",
        description="Tokenize raw text (a line per sentence or paragraph, a blank line between "
        "documents) into the dict.txt and fairseq mmap binaries that `fairseq-train --task span_bert` reads.",
    )
    p.add_argument("inputs", nargs="+", metavar="FILE", help="training text: .txt or .gz, UTF-8")
    p.add_argument("--destdir", required=True, help="output directory")
    vocab_source = p.add_mutually_exclusive_group(required=True)
    vocab_source.add_argument("--vocab", metavar="FILE",
                              help="a BERT WordPiece vocab.txt (ids = line numbers) or a SentencePiece .model")
    vocab_source.add_argument("--train-wordpiece", type=int, metavar="SIZE",
                              help="train a WordPiece vocabulary of at most SIZE tokens on the training text")
    vocab_source.add_argument("--train-sentencepiece", type=int, metavar="SIZE",
                              help="train a unigram SentencePiece model of SIZE pieces on the training text")
    p.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                   help="lowercase and strip accents before WordPiece (default: as the vocab.txt implies -- "
                   "uncased if it has no uppercase token; off when training)")
    valid = p.add_mutually_exclusive_group()
    valid.add_argument("--valid", nargs="+", metavar="FILE", help="validation text (same format)")
    valid.add_argument("--valid-fraction", type=float, default=0.0, metavar="F",
                       help="hold out this fraction of the training documents as the valid split")
    p.add_argument("--seed", type=int, default=1, help="chooses the held-out documents (default 1)")
    p.add_argument("--shards", type=int, default=1, metavar="N",
                   help="write DIR/shard0..shardN-1, documents dealt round-robin; fairseq-train reads one per epoch")
    p.add_argument("--workers", type=int, default=usable_cores(), help="tokenizer threads (default: all usable cores)")
    p.add_argument("--encoding-errors", choices=("strict", "replace"), default="strict",
                   help="on bytes that are not UTF-8: stop with an error (default) or substitute U+FFFD and count them")
    p.add_argument("--force", action="store_true", help="replace binaries of another vocabulary in --destdir")
    p.add_argument("--write-pieces", action="store_true",
                   help="also write train.pieces / valid.pieces: the text as space-separated word pieces, a blank "
                   "line between documents, the input stock fairseq-preprocess --srcdict dict.txt reads")
    return p


def parse_args(argv):
    parser = get_parser()
    args = parser.parse_args(argv)
    if not 0.0 <= args.valid_fraction < 1.0:
        parser.error("--valid-fraction must be in [0, 1)")
    if args.shards < 1:
        parser.error("--shards must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    size = args.train_wordpiece or args.train_sentencepiece
    if size is not None and size < 100:
        parser.error("a trained vocabulary needs at least 100 tokens")
    if args.train_sentencepiece and args.lowercase is not None:
        parser.error("--lowercase applies to WordPiece; lowercase the text before training SentencePiece")
    return args


def held_out(index, fraction, phase):
    """Every (1/fraction)-th document from a seeded phase: exact share, spread over the corpus."""
    return int((index + 1) * fraction + phase) > int(index * fraction + phase)


def labelled_documents(reader, args):
    """(Document, "train" | "valid") for every input document, in input order."""
    if args.valid:
        for doc in reader.documents(args.inputs):
            yield doc, "train"
        for doc in reader.documents(args.valid):
            yield doc, "valid"
        return
    phase = random.Random(args.seed).random()
    for i, doc in enumerate(reader.documents(args.inputs)):
        yield doc, "valid" if held_out(i, args.valid_fraction, phase) else "train"


def batches(labelled):
    batch, n_lines, n_chars = [], 0, 0
    for doc, split in labelled:
        batch.append((doc, split))
        n_lines += len(doc.lines)
        n_chars += sum(map(len, doc.lines))
        if n_lines >= BATCH_LINES or n_chars >= BATCH_CHARS:
            yield batch
            batch, n_lines, n_chars = [], 0, 0
    if batch:
        yield batch


class Progress:
    """A line on stderr every PROGRESS_SECONDS: what has been read, how fast."""

    def __init__(self, stage):
        self.stage, self.start, self.last = stage, time.time(), time.time()

    def update(self, bytes_read, documents):
        now = time.time()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            mb = bytes_read / 1e6
            print(
                f"spanbert-preprocess: {self.stage}: {mb:,.1f} MB, {documents:,} documents, "
                f"{mb / (now - self.start):.1f} MB/s",
                file=sys.stderr,
                flush=True,
            )


def make_encoder(args):
    if args.vocab and args.vocab.endswith(".model"):
        return encoders.load_sentencepiece(args.vocab, args.workers)
    if args.vocab:
        return encoders.load_wordpiece(args.vocab, args.lowercase)
    if args.train_wordpiece:
        return encoders.train_wordpiece(lambda: training_text(args), args.train_wordpiece, bool(args.lowercase))
    return encoders.train_sentencepiece(training_text(args), args.train_sentencepiece, args.workers)


def training_text(args):
    """The lines of the training documents, a document at a time (the vocabulary never sees valid)."""
    reader, progress = TextReader(args.encoding_errors), Progress("training the vocabulary")
    for i, (doc, split) in enumerate(labelled_documents(reader, args)):
        progress.update(reader.bytes_read, i)
        if split == "train":
            yield doc.lines


class Stats:
    def __init__(self):
        self.documents = {"train": 0, "valid": 0}
        self.lines = self.tokens = self.unknown = 0
        self.dropped_documents = self.dropped_lines = 0
        self.first_dropped = None


def open_writers(root, args, dictionary):
    """(shard directories, one train writer per shard, the valid writer or None) under `root`."""
    dirs = [root] if args.shards == 1 else [os.path.join(root, f"shard{i}") for i in range(args.shards)]
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    train = [DatasetWriter(os.path.join(d, "train"), dictionary, args.write_pieces) for d in dirs]
    has_valid = bool(args.valid) or args.valid_fraction > 0
    valid = DatasetWriter(os.path.join(dirs[0], "valid"), dictionary, args.write_pieces) if has_valid else None
    return dirs, train, valid


def encode_batch(encoder, batch):
    return encoder.encode([line for doc, _ in batch for line in doc.lines])


def binarize_batch(batch, flat, lengths, train, valid, stats):
    offsets = np.cumsum(lengths) - lengths
    assigned = {w: [] for w in train + [valid] if w is not None}
    start = 0
    for doc, split in batch:
        stop = start + len(doc.lines)
        line_indices = np.arange(start, stop)
        kept = line_indices[lengths[start:stop] > 0]  # a line of nothing but e.g. control characters
        start = stop
        stats.dropped_lines += len(line_indices) - len(kept)
        if lengths[kept].sum() < MIN_DOCUMENT_TOKENS:
            stats.dropped_documents += 1
            stats.first_dropped = stats.first_dropped or f"{doc.path}:{doc.first_line}"
            continue
        if split == "train":
            writer = train[stats.documents["train"] % len(train)]
        else:
            writer = valid
        stats.documents[split] += 1
        stats.lines += len(kept)
        assigned[writer].append(kept)
    for writer, documents in assigned.items():
        writer.add_documents(documents, flat, offsets, lengths)


def binarize(args, encoder, root):
    """Tokenize every document into `root`; return Stats. dict.txt is written last."""
    dictionary = encoder.dictionary
    dirs, train, valid = open_writers(root, args, dictionary)
    reader, stats, progress = TextReader(args.encoding_errors), Stats(), Progress("binarizing")
    # The tokenizer releases the GIL: it encodes one batch while this thread reads the next
    # and writes the previous one.
    with ThreadPoolExecutor(1) as tokenizer_thread:
        previous = None
        for batch in batches(labelled_documents(reader, args)):
            encoded = tokenizer_thread.submit(encode_batch, encoder, batch)
            if previous:
                binarize_batch(previous[0], *previous[1].result(), train, valid, stats)
            previous = batch, encoded
            progress.update(reader.bytes_read, sum(stats.documents.values()))
        if previous:
            binarize_batch(previous[0], *previous[1].result(), train, valid, stats)
    for writer in train + [valid]:
        if writer is not None:
            writer.close()
            stats.tokens += writer.tokens
            stats.unknown += writer.unknown
    stats.replaced, stats.first_replacement = reader.replaced, reader.first_replacement
    check_splits(args, stats, train, valid)
    # dict.txt carries the training split's token counts (the unigram distribution of the corpus).
    dictionary.count = sum(w.counts for w in train).tolist()
    for d in dirs:
        encoder.save(d)
        dictionary.save(os.path.join(d, "dict.txt"))
    return stats


def check_splits(args, stats, train, valid):
    where = f"(documents shorter than {MIN_DOCUMENT_TOKENS} tokens dropped: {stats.dropped_documents})"
    if stats.documents["train"] == 0:
        raise PreprocessError(f"{', '.join(args.inputs)}: no training document left {where}")
    if valid is not None and valid.documents == 0:
        source = ", ".join(args.valid) if args.valid else f"--valid-fraction {args.valid_fraction}"
        raise PreprocessError(f"{source}: the valid split is empty {where}; raise the fraction or give --valid")
    empty = [i for i, w in enumerate(train) if w.documents == 0]
    if empty:
        raise PreprocessError(
            f"--shards {args.shards}: only {stats.documents['train']} training documents, "
            f"so shard{empty[0]} would be empty; use fewer shards"
        )


def summary(args, encoder, stats, seconds):
    dest = os.path.abspath(args.destdir)
    data = dest if args.shards == 1 else ":".join(os.path.join(dest, f"shard{i}") for i in range(args.shards))
    docs = stats.documents
    parts = [
        f"{docs['train'] + docs['valid']:,} documents (train {docs['train']:,}, valid {docs['valid']:,})",
        f"{stats.lines:,} lines",
        f"{stats.tokens:,} tokens",
        f"unknown {100.0 * stats.unknown / max(stats.tokens, 1):.3f}%",
        f"{stats.dropped_documents:,} documents under {MIN_DOCUMENT_TOKENS} tokens dropped"
        + (f" (first at {stats.first_dropped})" if stats.first_dropped else ""),
    ]
    if stats.dropped_lines:
        parts.append(f"{stats.dropped_lines:,} lines without tokens dropped")
    if stats.replaced:
        parts.append(f"{stats.replaced:,} invalid UTF-8 sequences replaced (first at {stats.first_replacement})")
    if args.write_pieces:
        parts.append("word pieces for fairseq-preprocess in train.pieces/valid.pieces")
    parts += [
        f"{args.shards} shard{'s' if args.shards > 1 else ''}",
        encoder.describe(),
        f"{seconds:.1f} s",
    ]
    return f"spanbert-preprocess: {', '.join(parts)} -> {dest} (fairseq-train data: {data})"


def set_workers(workers):
    # The Rust tokenizers read these when they first start their thread pool.
    os.environ["RAYON_NUM_THREADS"] = str(workers)
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if workers > 1 else "false"


def run(args):
    start = time.time()
    set_workers(args.workers)
    check_input_files(args.inputs + (args.valid or []) + ([args.vocab] if args.vocab else []))
    if os.path.exists(args.destdir) and not os.path.isdir(args.destdir):
        raise PreprocessError(f"{args.destdir}: exists and is not a directory")
    encoder = make_encoder(args)
    check_output_dir(args.destdir, encoder.dictionary, args.force)
    staged = StagedOutput(args.destdir)
    try:
        stats = binarize(args, encoder, staged.path)
        staged.commit()
    except KeyboardInterrupt:
        staged.discard()
        raise KeyboardInterrupt("nothing written") from None
    except BaseException:
        staged.discard()
        raise
    print(summary(args, encoder, stats, time.time() - start), flush=True)


def main(argv=None):
    return run_cli("spanbert-preprocess", lambda argv: run(parse_args(argv)), argv)


if __name__ == "__main__":
    sys.exit(main())
