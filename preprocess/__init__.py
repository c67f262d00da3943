"""spanbert-preprocess: raw text to fairseq binaries for the span_bert task."""


class PreprocessError(Exception):
    """Bad input or output: the message names the file (and line); the CLI prints it, no traceback."""
