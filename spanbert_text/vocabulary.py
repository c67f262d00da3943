"""The vocabulary file: ids are its line numbers, specials are found by name.

SpanBERT kept BERT's own ids ([PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103 in BERT
cased), so released checkpoints load with no remapping. fairseq's own Dictionary prepends
<s> <pad> </s> <unk>, which would shift every id; this one does not.

`spanbert_fairseq.data.dictionary.BertDictionary` is this class plus fairseq's `Dictionary`.
"""

import os

import numpy as np

from .errors import UserInputError
from .files import atomic_path

# Role -> accepted spellings. WordPiece (BERT) names first, then SentencePiece/fairseq names.
SPECIAL_TOKENS = {
    "pad": ("[PAD]", "<pad>"),
    "unk": ("[UNK]", "<unk>"),
    "cls": ("[CLS]", "<s>"),
    "sep": ("[SEP]", "</s>"),
    "mask": ("[MASK]", "<mask>"),
}
WORDPIECE_CONTINUATION = "##"  # a WordPiece that continues the previous word starts with this
SENTENCEPIECE_WORD_START = "\u2581"  # "▁": a SentencePiece that starts a word starts with this


class VocabularyError(UserInputError):
    """A vocabulary file that cannot be used; the message names the file (and line)."""


class Vocabulary:
    """Ids equal line numbers of dict.txt (or vocab.txt); specials found by name.

    `bos()` is [CLS] and `eos()` is [SEP], so fairseq code that prepends bos / appends eos
    (fairseq-preprocess appends eos to every line) writes BERT's own markers. The accessors
    fairseq's `Dictionary` offers (`index`, `pad()` ...) behave as fairseq's do.
    """

    def __init__(self):
        self.symbols, self.count, self.indices = [], [], {}
        self.nspecial = 0
        self.bos_word = self.unk_word = self.pad_word = self.eos_word = self.mask_word = None
        self.bos_index = self.unk_index = self.pad_index = self.eos_index = self.mask_index = None

    @classmethod
    def load(cls, f):
        """Read `dict.txt` ("token count" lines) or a BERT `vocab.txt` (one token a line)."""
        d = cls()
        path = os.fspath(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "<stream>")
        if isinstance(f, (str, os.PathLike)):
            lines = _read_lines(path)
        else:
            lines = f.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for lineno, line in enumerate(lines, 1):
            token, count = _parse_vocab_line(line)
            if token in d.indices:
                raise VocabularyError(f"{path}:{lineno}: duplicate vocabulary entry {token!r}")
            d.indices[token] = len(d.symbols)
            d.symbols.append(token)
            d.count.append(count)
        d._bind_specials(path)
        return d

    def _bind_specials(self, path):
        found = {role: _find_special(self.indices, names) for role, names in SPECIAL_TOKENS.items()}
        missing = [names[0] for role, names in SPECIAL_TOKENS.items() if found[role] is None]
        if missing:
            raise VocabularyError(
                f"{path}: vocabulary lacks the special tokens {', '.join(missing)} "
                f"(need one of {dict((r, n) for r, n in SPECIAL_TOKENS.items())})"
            )
        self.pad_index, self.unk_index = found["pad"], found["unk"]
        self.bos_index, self.eos_index = found["cls"], found["sep"]
        self.mask_index = found["mask"]
        self.pad_word, self.unk_word = self.symbols[self.pad_index], self.symbols[self.unk_index]
        self.bos_word, self.eos_word = self.symbols[self.bos_index], self.symbols[self.eos_index]
        self.mask_word = self.symbols[self.mask_index]

    def __len__(self):
        return len(self.symbols)

    def index(self, sym):
        """The id of `sym`; unk() for a symbol not in the vocabulary."""
        assert isinstance(sym, str)
        return self.indices.get(sym, self.unk_index)

    def bos(self):
        return self.bos_index

    def pad(self):
        return self.pad_index

    def eos(self):
        return self.eos_index

    def unk(self):
        return self.unk_index

    def cls(self):
        return self.bos_index

    def sep(self):
        return self.eos_index

    def mask(self):
        return self.mask_index

    def special_ids(self):
        return sorted({self.pad_index, self.unk_index, self.bos_index, self.eos_index, self.mask_index})

    def is_sentencepiece(self):
        return any(s.startswith(SENTENCEPIECE_WORD_START) for s in self.symbols)

    def word_start_table(self):
        """bool array over the vocabulary: True where a token begins a new word.

        WordPiece: every token but `##` continuations. SentencePiece: tokens starting with `▁`.
        Specials count as word starts so a span never extends into them.
        """
        if self.is_sentencepiece():
            starts = [s.startswith(SENTENCEPIECE_WORD_START) for s in self.symbols]
        else:
            starts = [not s.startswith(WORDPIECE_CONTINUATION) for s in self.symbols]
        table = np.array(starts, dtype=bool)
        table[self.special_ids()] = True
        return table

    def is_cased(self):
        """False for an uncased (lowercasing) vocabulary: no token changes under lower().

        Bracketed names ([PAD], [unused0] ...) and the specials are left out: BERT uncased has them too.
        """
        specials = {self.symbols[i] for i in self.special_ids()}
        return any(
            s != s.lower() for s in self.symbols
            if s not in specials and not (s.startswith("[") and s.endswith("]"))
        )

    def save(self, f):
        """Write dict.txt with one line per id, in id order, so a reload keeps every id."""
        if isinstance(f, (str, os.PathLike)):
            os.makedirs(os.path.dirname(os.path.abspath(f)), exist_ok=True)
            with atomic_path(f) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                return self.save(fh)
        for sym, count in zip(self.symbols, self.count):
            print(f"{sym} {count}", file=f)

    def save_vocab_txt(self, path):
        """BERT's vocab.txt: one token a line, line number = id."""
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(s + "\n" for s in self.symbols))


def lists_every_special(path):
    """Whether the vocabulary file at `path` lists all five specials by name (either spelling).

    A BERT-layout dict.txt / vocab.txt (ids = line numbers) does; a fairseq dict.txt never lists
    <s> <pad> </s> <unk> (fairseq prepends them, and refuses a file that repeats them), nor does a
    label dict.txt.
    """
    tokens = {_parse_vocab_line(line)[0] for line in _read_lines(path)}
    return all(any(name in tokens for name in names) for names in SPECIAL_TOKENS.values())


def _read_lines(path):
    if not os.path.isfile(path):
        raise VocabularyError(f"vocabulary file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except UnicodeDecodeError as e:
        raise VocabularyError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return lines


def _parse_vocab_line(line):
    line = line.rstrip("\r")
    token, sep, count = line.rpartition(" ")
    if sep and count.lstrip("-").isdigit() and token:
        return token, int(count)
    return line, 1


def _find_special(indices, names):
    for name in names:
        if name in indices:
            return indices[name]
    return None
