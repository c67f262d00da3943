"""The vocabulary as a fairseq Dictionary: ids are the vocab file's line numbers.

The file format, the specials and the word-start table live in the fairseq-free
`spanbert_text.vocabulary`; this module adds fairseq's `Dictionary` and only the overrides that
keep the ids fixed.
"""

from fairseq.data import Dictionary

from spanbert_text.vocabulary import Vocabulary, VocabularyError


class BertDictionary(Vocabulary, Dictionary):
    """A `Vocabulary` that fairseq can use as its Dictionary (string(), encode_line() ...).

    `Vocabulary` comes first, so its constructor, `load` and `save` replace fairseq's.
    """

    def add_symbol(self, word, n=1, overwrite=False):
        if word in self.indices:
            idx = self.indices[word]
            self.count[idx] += n
            return idx
        raise VocabularyError(f"cannot add {word!r}: a BertDictionary is fixed by its vocab file")

    def finalize(self, *args, **kwargs):
        """Ids are fixed by the vocab file: never reorder."""

    def pad_to_multiple_(self, padding_factor):
        """Never grow: the embedding rows must match the vocab file exactly."""
