"""Test corpora: real prose tokenized with real vocabularies, written as fairseq mmap binaries.

Built here (not with spanbert-preprocess) so these tests depend only on docs/DESIGN.md's format:
one item per line (ids + eos), an eos-only item between documents.
"""

from pathlib import Path

import numpy as np
import torch
from fairseq.data import indexed_dataset


def wordpiece_documents(vocab_path, documents):
    """documents (lists of lines) -> lists of int64 id arrays, BERT uncased WordPiece, no specials."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(str(vocab_path), lowercase=True)
    lines = [line for doc in documents for line in doc]
    encoded = iter(tokenizer.encode_batch(lines, add_special_tokens=False))
    return [[np.array(next(encoded).ids, dtype=np.int64) for _ in doc] for doc in documents]


def write_dict(path, symbols, counts):
    with open(path, "w", encoding="utf-8") as f:
        for sym, count in zip(symbols, counts):
            f.write(f"{sym} {int(count)}\n")


def write_binaries(prefix, tokenized_docs, eos, vocab_size):
    """fairseq mmap binaries: each line's ids + eos, an eos-only item between documents."""
    dtype = indexed_dataset.best_fitting_int_dtype(vocab_size)
    builder = indexed_dataset.MMapIndexedDatasetBuilder(f"{prefix}.bin", dtype=dtype)
    for d, doc in enumerate(tokenized_docs):
        if d:
            builder.add_item(torch.tensor([eos]))
        for line in doc:
            builder.add_item(torch.from_numpy(np.append(line, eos)))
    builder.finalize(f"{prefix}.idx")


def corpus_counts(tokenized_docs, vocab_size):
    flat = np.concatenate([line for doc in tokenized_docs for line in doc])
    return np.bincount(flat, minlength=vocab_size)


def make_wordpiece_data_dir(out, vocab_path, documents, n_valid=10):
    """DIR with dict.txt (vocab order, corpus counts) and train/valid binaries; -> (dir, train docs)."""
    from spanbert_fairseq.data.dictionary import BertDictionary

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    symbols = Path(vocab_path).read_text(encoding="utf-8").split("\n")[:-1]
    docs = wordpiece_documents(vocab_path, documents)
    write_dict(out / "dict.txt", symbols, corpus_counts(docs, len(symbols)) + 1)
    d = BertDictionary.load(str(out / "dict.txt"))
    write_binaries(str(out / "train"), docs[n_valid:], d.eos(), len(d))
    write_binaries(str(out / "valid"), docs[:n_valid], d.eos(), len(d))
    return out, docs[n_valid:]


def make_sentencepiece_data_dir(out, documents, vocab_size=800):
    """A tiny SentencePiece model trained on the prose; dict.txt in spm id order with <mask> added."""
    import sentencepiece as spm

    from spanbert_fairseq.data.dictionary import BertDictionary

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [line for doc in documents for line in doc]
    (out / "raw.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(out / "raw.txt"), model_prefix=str(out / "spm"), vocab_size=vocab_size,
        model_type="unigram", pad_id=3, unk_id=0, bos_id=1, eos_id=2, user_defined_symbols=["<mask>"],
        minloglevel=2, num_threads=1,
    )
    sp = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    symbols = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    docs = [[np.array(sp.encode(line), dtype=np.int64) for line in doc] for doc in documents]
    write_dict(out / "dict.txt", symbols, corpus_counts(docs, len(symbols)) + 1)
    d = BertDictionary.load(str(out / "dict.txt"))
    write_binaries(str(out / "train"), docs[5:], d.eos(), len(d))
    write_binaries(str(out / "valid"), docs[:5], d.eos(), len(d))
    return out, docs[5:]
