"""One base class for errors the user can fix, and one way every command reports them.

A command-line program prints such an error as one line, `PROG: error: MESSAGE`, and exits with
status 1; argparse's usage errors keep argparse's status 2; Ctrl-C exits with 130.
`SPANBERT_TRACEBACK=1` re-raises instead, for the traceback.
"""

import os
import sys

INPUT_ERROR_STATUS = 1
INTERRUPTED_STATUS = 130


class UserInputError(ValueError):
    """Input the user can fix (a file, a flag, a checkpoint); the message names it and says how."""


def want_traceback():
    return os.environ.get("SPANBERT_TRACEBACK") == "1"


def error_line(prog, message):
    return f"{prog}: error: {message}"


def run_cli(prog, main, argv=None):
    """Run `main(argv)` as command `prog`; returns the exit status (0, 1 or 130)."""
    try:
        main(argv)
    except (UserInputError, OSError) as e:
        # OSError: a full disk or a permission, not a bug; its message names the path.
        if want_traceback():
            raise
        print(error_line(prog, e), file=sys.stderr)
        return INPUT_ERROR_STATUS
    except KeyboardInterrupt as e:  # a program may say what the interruption left: "nothing written"
        print(f"{prog}: interrupted" + (f"; {e}" if str(e) else ""), file=sys.stderr)
        return INTERRUPTED_STATUS
    return 0
