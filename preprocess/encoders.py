"""Batched encoders for preprocessing: a given or trained WordPiece, or a SentencePiece model.

Every encoder pairs a Rust/C++ tokenizer with the Vocabulary built from the same token list,
so token ids are dictionary ids (= vocab.txt / dict.txt line numbers) by construction.
Special tokens are never produced from raw text: "[SEP]" typed in a document is ordinary text.
"""

import io
import itertools
import os

import numpy as np
import sentencepiece as spm
from tokenizers import models, trainers

from spanbert_text.files import atomic_path
from spanbert_text.tokenization import (
    SENTENCEPIECE_MODEL,
    TOKENIZER_JSON,
    VOCAB_TXT,
    bert_tokenizer,
    wordpiece_tokenizer,
)
from spanbert_text.vocabulary import SPECIAL_TOKENS, Vocabulary

from . import PreprocessError

# Specials in the order trained vocabularies place them: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4.
WORDPIECE_SPECIALS = [names[0] for names in SPECIAL_TOKENS.values()]
SENTENCEPIECE_SPECIALS = {role: names[1] for role, names in SPECIAL_TOKENS.items()}
SENTENCEPIECE_TRAINING_LINES = 5_000_000  # sentencepiece samples at most this many lines


def _flatten(id_lists):
    """list of per-line id lists -> (all ids as one int64 array, per-line lengths)."""
    lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
    flat = np.fromiter(itertools.chain.from_iterable(id_lists), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths


def _vocabulary_from_tokens(tokens, source):
    f = io.StringIO("\n".join(tokens) + "\n")
    f.name = source
    return Vocabulary.load(f)


class WordPieceEncoder:
    """BERT's tokenization (normalizer, pre-tokenizer, WordPiece) over a Vocabulary's tokens."""

    def __init__(self, dictionary, lowercase):
        self.dictionary, self.lowercase = dictionary, lowercase
        self.tokenizer = wordpiece_tokenizer(dictionary, lowercase)

    def encode(self, lines):
        encodings = self.tokenizer.encode_batch_fast(lines, add_special_tokens=False)
        return _flatten([e.ids for e in encodings])

    def save(self, directory):
        """vocab.txt (ids = line numbers) and tokenizer.json (normalizer included) for later encoding."""
        self.dictionary.save_vocab_txt(os.path.join(directory, VOCAB_TXT))
        with atomic_path(os.path.join(directory, TOKENIZER_JSON)) as temporary:
            self.tokenizer.save(temporary)

    def describe(self):
        case = "lowercased" if self.lowercase else "cased"
        return f"WordPiece {len(self.dictionary)} ({case})"


class SentencePieceEncoder:
    """A SentencePiece model; its dictionary lists the pieces in id order."""

    def __init__(self, model_proto, source, workers):
        self.model_proto, self.workers = model_proto, workers
        self.processor = spm.SentencePieceProcessor(model_proto=model_proto)
        pieces = [self.processor.id_to_piece(i) for i in range(self.processor.get_piece_size())]
        self.dictionary = _vocabulary_from_tokens(pieces, source)

    def encode(self, lines):
        return _flatten(self.processor.encode(lines, out_type=int, num_threads=self.workers))

    def save(self, directory):
        with atomic_path(os.path.join(directory, SENTENCEPIECE_MODEL)) as temporary, open(temporary, "wb") as f:
            f.write(self.model_proto)

    def describe(self):
        return f"SentencePiece {len(self.dictionary)}"


def load_wordpiece(vocab_path, lowercase=None):
    """A BERT vocab.txt; lowercase=None decides from the vocab (uncased vocabs lowercase)."""
    dictionary = Vocabulary.load(vocab_path)
    if lowercase is None:
        lowercase = not dictionary.is_cased()
    return WordPieceEncoder(dictionary, lowercase)


def load_sentencepiece(model_path, workers):
    with open(model_path, "rb") as f:
        proto = f.read()
    try:
        return SentencePieceEncoder(proto, model_path, workers)
    except RuntimeError as e:
        raise PreprocessError(f"{model_path}: not a SentencePiece model: {e}") from None


def train_wordpiece(read_line_batches, size, lowercase):
    """Train a WordPiece vocab of at most `size` tokens; the 5 BERT specials take ids 0-4.

    `read_line_batches()` starts a fresh pass over the training lines; training takes two. The
    tokenizers trainer numbers continuation pieces ("##e") in hash-map order, and merges of equal
    count are then chosen by those numbers, so the same text could give different vocabularies
    (huggingface/tokenizers#1794). Naming every continuation piece up front, sorted, fixes their
    numbers and makes the vocabulary a function of the text alone.
    """
    pinned = WORDPIECE_SPECIALS + _continuation_pieces(read_line_batches(), lowercase)
    vocab = _train_bert_wordpiece(read_line_batches(), size, lowercase, pinned)
    tokens = sorted(vocab, key=vocab.get)
    return WordPieceEncoder(_vocabulary_from_tokens(tokens, "<trained WordPiece>"), lowercase)


def _continuation_pieces(line_batches, lowercase):
    """Sorted "##c" for every character c the trainer would see inside a word."""
    # A budget of 0 stops the trainer before any merge: the vocab is the alphabet and its "##" forms.
    vocab = _train_bert_wordpiece(line_batches, 0, lowercase, WORDPIECE_SPECIALS)
    return sorted(token for token in vocab if token.startswith("##"))


def _train_bert_wordpiece(line_batches, size, lowercase, special_tokens):
    tokenizer = bert_tokenizer(models.WordPiece(unk_token=SPECIAL_TOKENS["unk"][0]), lowercase)
    trainer = trainers.WordPieceTrainer(vocab_size=size, special_tokens=special_tokens, show_progress=False)
    tokenizer.train_from_iterator(line_batches, trainer=trainer)
    return tokenizer.get_vocab()


def train_sentencepiece(line_batches, size, workers):
    """Train a unigram SentencePiece model; <pad> <unk> <s> </s> <mask> take ids 0-4."""
    names = SENTENCEPIECE_SPECIALS
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=itertools.chain.from_iterable(line_batches),
            model_writer=model,
            vocab_size=size,
            model_type="unigram",
            pad_id=0, pad_piece=names["pad"],
            unk_id=1, unk_piece=names["unk"],
            bos_id=2, bos_piece=names["cls"],
            eos_id=3, eos_piece=names["sep"],
            control_symbols=[names["mask"]],
            input_sentence_size=SENTENCEPIECE_TRAINING_LINES,
            shuffle_input_sentence=True,
            num_threads=workers,
            minloglevel=2,
        )
    except RuntimeError as e:
        raise PreprocessError(f"training SentencePiece failed: {e}") from None
    return SentencePieceEncoder(model.getvalue(), "<trained SentencePiece>", workers)
