"""Tokenizers over a Vocabulary: BERT WordPiece (built or loaded) and SentencePiece.

One construction of BERT's tokenizer serves preprocessing, the hub and the HF export, so text
is split the same way wherever it is split. Ids are the vocabulary's line numbers.
"""

import json
import os

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from .errors import UserInputError
from .files import write_text
from .vocabulary import SENTENCEPIECE_WORD_START, WORDPIECE_CONTINUATION

MAX_WORD_CHARS = 100  # BERT's: a longer "word" becomes one [UNK]
TOKENIZER_JSON, TOKENIZER_CONFIG = "tokenizer.json", "tokenizer_config.json"
SPECIAL_TOKENS_MAP, VOCAB_TXT, SENTENCEPIECE_MODEL = "special_tokens_map.json", "vocab.txt", "spm.model"
# Punctuation that BERT splits off as its own piece, and on which side of it the text had no space.
_NO_SPACE_BEFORE = set(".,;:!?%)]}")
_NO_SPACE_AFTER = set("([{$#")
_APOSTROPHE_SUFFIXES = {"s", "t", "m", "re", "ve", "ll", "d"}  # don ' t -> don't, it ' s -> it's


def bert_tokenizer(model, lowercase):
    """BERT's normalizer (strips accents exactly when it lowercases, as BERT uncased) and pre-tokenizer."""
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer


def wordpiece_tokenizer(vocabulary, lowercase):
    """BERT's full tokenizer for `vocabulary`: WordPiece model, decoder and [CLS]/[SEP] template."""
    model = models.WordPiece(
        vocab=dict(vocabulary.indices), unk_token=vocabulary.unk_word, max_input_chars_per_word=MAX_WORD_CHARS
    )
    tokenizer = bert_tokenizer(model, lowercase)
    tokenizer.decoder = decoders.WordPiece(prefix=WORDPIECE_CONTINUATION)
    cls, sep = vocabulary.bos_word, vocabulary.eos_word
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, vocabulary.bos()), (sep, vocabulary.eos())],
    )
    return tokenizer


def save_hf_tokenizer(vocabulary, directory, lowercase, max_length):
    """tokenizer.json, tokenizer_config.json and special_tokens_map.json, which any transformers
    version reads as BERT's tokenizer. Returns the names written ([] for SentencePiece, which
    BERT's tokenizer cannot reproduce)."""
    if vocabulary.is_sentencepiece():
        return []
    specials = {
        "unk_token": vocabulary.unk_word, "sep_token": vocabulary.eos_word, "pad_token": vocabulary.pad_word,
        "cls_token": vocabulary.bos_word, "mask_token": vocabulary.mask_word,
    }
    tokenizer = wordpiece_tokenizer(vocabulary, lowercase)
    tokenizer.add_special_tokens(list(specials.values()))
    write_text(os.path.join(directory, TOKENIZER_JSON), tokenizer.to_str())
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": lowercase, "model_max_length": max_length,
              **specials}
    write_text(os.path.join(directory, TOKENIZER_CONFIG), _json(config))
    write_text(os.path.join(directory, SPECIAL_TOKENS_MAP), _json(specials))
    return [TOKENIZER_JSON, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP]


def _json(obj):
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


class WordPieceText:
    """Text <-> word pieces with BERT's tokenizer: a saved tokenizer.json, else built from the vocabulary."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        # HF tokenizer.json files often pad or truncate to a fixed length (MiniLM's pads to 128).
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def pieces(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False).tokens

    def pieces_with_offsets(self, text):
        """(pieces, [(start, end), ...]): each piece's characters in `text` itself (the normalizer's
        lower-casing and accent stripping are undone by the tokenizer's alignment)."""
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        return encoding.tokens, [tuple(span) for span in encoding.offsets]

    @staticmethod
    def detokenize(pieces):
        """Pieces -> text: `##` pieces join their word; no space before closing punctuation or
        after opening brackets, none around the apostrophe of a contraction (BERT's pre-tokenizer
        split all of these off the words they were written against)."""
        text, glue_next = "", True
        for i, piece in enumerate(pieces):
            if piece.startswith(WORDPIECE_CONTINUATION):
                text += piece[len(WORDPIECE_CONTINUATION):]
                continue
            contraction = piece == "'" and i + 1 < len(pieces) and pieces[i + 1].lower() in _APOSTROPHE_SUFFIXES
            text += piece if glue_next or piece in _NO_SPACE_BEFORE or contraction else " " + piece
            glue_next = piece in _NO_SPACE_AFTER or contraction
        return text


class SentencePieceText:
    def __init__(self, model_path):
        import sentencepiece as spm

        self.processor = spm.SentencePieceProcessor(model_file=model_path)

    def pieces(self, text):
        return self.processor.encode(text, out_type=str)

    def pieces_with_offsets(self, text):
        """(pieces, [(start, end), ...]) in characters of `text`; a piece's leading whitespace
        (the space its `▁` stands for) is left out of its span."""
        encoded = self.processor.encode(text, return_type="proto")
        char_at = _char_index_of_bytes(text)
        pieces, spans = [], []
        for piece in encoded.pieces:
            start, end = char_at[piece.begin], char_at[piece.end]
            while start < end and text[start].isspace():
                start += 1
            pieces.append(piece.piece)
            spans.append((start, end))
        return pieces, spans

    @staticmethod
    def detokenize(pieces):
        return "".join(pieces).replace(SENTENCEPIECE_WORD_START, " ").strip()


def _char_index_of_bytes(text):
    """list: for each UTF-8 byte offset of `text` (and its end), the character it falls in."""
    index = []
    for i, ch in enumerate(text):
        index += [i] * len(ch.encode("utf-8"))
    return index + [len(text)]


def load_text_tokenizer(directory, vocabulary):
    """The tokenizer saved beside a model: spm.model, tokenizer.json, or vocab.txt (cased as the vocabulary)."""
    path = os.path.join(directory, SENTENCEPIECE_MODEL)
    if os.path.exists(path):
        return SentencePieceText(path)
    path = os.path.join(directory, TOKENIZER_JSON)
    if os.path.exists(path):
        return WordPieceText(Tokenizer.from_file(path))
    if os.path.exists(os.path.join(directory, VOCAB_TXT)):
        return WordPieceText(wordpiece_tokenizer(vocabulary, lowercase=not vocabulary.is_cased()))
    raise UserInputError(
        f"{directory}: no tokenizer found; put the vocabulary the model was trained with next to the "
        f"checkpoint: {VOCAB_TXT} (or {TOKENIZER_JSON}) for WordPiece, or {SENTENCEPIECE_MODEL} for SentencePiece"
    )
