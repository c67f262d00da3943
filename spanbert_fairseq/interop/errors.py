"""The one error type of the interop tools, and how the CLIs show it: a message, no traceback."""

import sys

from spanbert_fairseq.data.dictionary import VocabularyError


class InteropError(ValueError):
    """A checkpoint, vocabulary or config that cannot be converted; the message says why."""


def run_cli(prog, main_fn):
    """Run `main_fn()`; print a user error as `prog: error: ...` and exit 2 (argparse's code)."""
    try:
        main_fn()
    except (InteropError, VocabularyError, FileNotFoundError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
