"""fairseq-train reports bad input found by the plugin as one line, not a traceback.

The plugin's checks (binaries, dict.txt, masking flags, positions) raise errors whose message names
the file, line or flag. fairseq-train lets any exception end the process with a traceback, which
buries that message under fifty lines of fairseq internals. When a fairseq command runs, an
exception of the plugin's own error types, or a ValueError / FileNotFoundError raised by the
plugin's own code, is printed as `fairseq-train: error: MESSAGE` with exit status 1. Any other
exception (a bug) keeps its traceback, and `SPANBERT_TRACEBACK=1` restores it for all.
"""

import os
import sys

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
PLAIN_TYPES = (ValueError, FileNotFoundError)


def _raised_by_plugin(tb):
    """True if the innermost frame of the traceback is the plugin's code (an explicit check)."""
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(PACKAGE_DIR + os.sep)


def is_input_error(exc, tb):
    from .data.binaries import BinaryDataError
    from .data.dictionary import VocabularyError

    if isinstance(exc, (BinaryDataError, VocabularyError)):
        return True
    return isinstance(exc, PLAIN_TYPES) and _raised_by_plugin(tb)


def _program_name():
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "fairseq-train"


def input_error_message(exc, tb):
    """The one-line message for an input error, or None for anything else.

    fairseq re-raises a failed checkpoint load as a bare "Cannot load model parameters from
    checkpoint X" whose cause (say, a vocabulary mismatch found by the plugin) is only in the
    chained traceback; such a cause is shown after fairseq's line.
    """
    if is_input_error(exc, tb):
        return str(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and is_input_error(cause, cause.__traceback__):
        return f"{exc}: {cause}"
    return None


def _make_excepthook(previous):
    def excepthook(exc_type, exc, tb):
        message = input_error_message(exc, tb) if os.environ.get("SPANBERT_TRACEBACK") != "1" else None
        if message is not None:
            # Returning from the hook ends the process with status 1, as any uncaught exception does.
            sys.stderr.write(f"{_program_name()}: error: {message}\n(set SPANBERT_TRACEBACK=1 for the traceback)\n")
            return
        previous(exc_type, exc, tb)

    excepthook.spanbert_cli_errors = True
    return excepthook


def _running_a_fairseq_command():
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    return spec_name.startswith("fairseq_cli") or os.path.basename(sys.argv[0] if sys.argv else "").startswith(
        "fairseq-"
    )


def install_cli_error_hook():
    """Install the hook in fairseq's command-line programs only (idempotent)."""
    if _running_a_fairseq_command() and not getattr(sys.excepthook, "spanbert_cli_errors", False):
        sys.excepthook = _make_excepthook(sys.excepthook)
