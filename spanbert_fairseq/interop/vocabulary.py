"""The vocabulary side of interop: vocab.txt / dict.txt, tokenizer files, and size checks."""

import json
from pathlib import Path

from .bert_layout import WORD_EMBEDDINGS
from .errors import InteropError


def check_vocabulary_size(state_dict, dictionary_size, checkpoint="the checkpoint",
                          dictionary="the dictionary"):
    """Raise a clear error if a span_bert state dict was trained with another vocabulary size.

    Loading it anyway fails deep inside torch with a shape mismatch of every vocabulary-sized
    tensor; this names the two files instead and says how to make them agree.
    """
    embeddings = state_dict.get(WORD_EMBEDDINGS)
    if embeddings is None or embeddings.size(0) == dictionary_size:
        return
    raise InteropError(
        f"vocabulary mismatch: {checkpoint} was trained with {embeddings.size(0)} vocabulary "
        f"entries but {dictionary} has {dictionary_size}. Binarize the data with the "
        f"checkpoint's own vocabulary (spanbert-import writes vocab.txt and dict.txt next to "
        f"the checkpoint: spanbert-preprocess --vocab <that vocab.txt>)"
    )


def write_vocab_txt(dictionary, path):
    """BERT's vocab.txt: one token a line, line number = id."""
    Path(path).write_text("".join(s + "\n" for s in dictionary.symbols), encoding="utf-8")


def is_lowercase_vocabulary(dictionary):
    """True for an uncased WordPiece vocabulary: no token but the [SPECIALS] has a capital."""
    specials = {dictionary[i] for i in dictionary.special_ids()}
    return not any(
        s != s.lower() for s in dictionary.symbols
        if s not in specials and not (s.startswith("[") and s.endswith("]"))
    )


def write_bert_tokenizer(dictionary, out_dir, lowercase, max_length):
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json for a WordPiece
    vocabulary, built with `tokenizers` directly so any transformers version reads them.
    Returns the names written ([] for a SentencePiece vocabulary, which BERT's tokenizer cannot
    reproduce)."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    if dictionary.is_sentencepiece():
        return []
    out_dir = Path(out_dir)
    specials = {
        "unk_token": dictionary.unk_word, "sep_token": dictionary.eos_word,
        "pad_token": dictionary.pad_word, "cls_token": dictionary.bos_word,
        "mask_token": dictionary.mask_word,
    }
    vocab = {s: i for i, s in enumerate(dictionary.symbols)}
    tok = Tokenizer(WordPiece(vocab, unk_token=dictionary.unk_word))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=None)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    cls, sep = dictionary.bos_word, dictionary.eos_word
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, dictionary.bos()), (sep, dictionary.eos())],
    )
    for token in specials.values():
        tok.add_special_tokens([token])
    tok.save(str(out_dir / "tokenizer.json"))
    config = {
        "tokenizer_class": "BertTokenizer", "do_lower_case": lowercase,
        "model_max_length": max_length, **specials,
    }
    _write_json(out_dir / "tokenizer_config.json", config)
    _write_json(out_dir / "special_tokens_map.json", specials)
    return ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


def _write_json(path, obj):
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
