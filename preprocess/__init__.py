"""spanbert-preprocess: raw text to fairseq binaries for the span_bert task (no torch, no fairseq)."""

from spanbert_text.errors import UserInputError


class PreprocessError(UserInputError):
    """Bad input or output: the message names the file (and line)."""
