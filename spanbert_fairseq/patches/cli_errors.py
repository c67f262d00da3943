"""fairseq's command-line programs report the plugin's input errors as one line, not a traceback.

Defect: fairseq-train lets any exception end the process with a traceback, which buries the
plugin's message (it names the file, line or flag) under fifty lines of fairseq internals.
Fix: a `UserInputError`, or a fairseq error whose cause is one (fairseq re-raises a failed
checkpoint load as a bare "Cannot load model parameters from checkpoint X"), is printed as
`PROG: error: MESSAGE` with exit status 1, as the plugin's own console scripts do
(`spanbert_text.errors`). Any other exception (a bug) keeps its traceback; SPANBERT_TRACEBACK=1
keeps it for all.
"""

import os
import sys

from spanbert_text.errors import UserInputError, error_line, want_traceback

from .wrapping import wrap


def fairseq_program():
    """The fairseq command this process runs ("train", "hydra_train", "validate" ...), or None."""
    main = sys.modules.get("__main__")
    module = getattr(getattr(main, "__spec__", None), "name", None) or ""
    if module.startswith("fairseq_cli."):
        return module[len("fairseq_cli."):]
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if script.startswith("fairseq-"):
        return script[len("fairseq-"):].replace("-", "_")
    return None


def program_name():
    """The command as a user types it: fairseq-train, fairseq-hydra-train, fairseq-validate ..."""
    return "fairseq-" + (fairseq_program() or "train").replace("_", "-")


def input_error_message(exc):
    """The one-line message for an input error (or a fairseq error caused by one), else None."""
    if isinstance(exc, UserInputError):
        return str(exc)
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, UserInputError):
        return f"{exc}: {cause}"
    return None


def _make_excepthook(previous):
    def excepthook(exc_type, exc, tb):
        message = None if want_traceback() else input_error_message(exc)
        if message is None:
            previous(exc_type, exc, tb)
            return
        # Returning from the hook ends the process with status 1, as any uncaught exception does.
        sys.stderr.write(error_line(program_name(), message) + "\n(set SPANBERT_TRACEBACK=1 for the traceback)\n")

    return excepthook


def install():
    wrap(sys, "excepthook", _make_excepthook)
