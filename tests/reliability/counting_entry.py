"""fairseq-train that records every whole-file check it makes, for tests of what runs once per job.

Each call of `TokenFile.scan_ids` (a whole .bin) or `resume_fallback.is_readable_checkpoint` (a whole
checkpoint) appends "NAME RANK" to the file named by SPANBERT_COUNT_FILE.
"""

import functools
import os
import sys

ENV_VAR = "SPANBERT_COUNT_FILE"


def counted(owner, name):
    original = getattr(owner, name)

    @functools.wraps(original)
    def record_and_call(*args, **kwargs):
        with open(os.environ[ENV_VAR], "a") as f:
            f.write(f"{name} {os.environ.get('RANK', '0')}\n")
        return original(*args, **kwargs)

    setattr(owner, name, record_and_call)


if __name__ == "__main__":
    sys.argv[0] = "fairseq-train"  # the plugin installs the training patches for this program
    from fairseq_cli.train import cli_main

    from spanbert_fairseq.data.binaries import TokenFile
    from spanbert_fairseq.patches import resume_fallback

    counted(TokenFile, "scan_ids")
    counted(resume_fallback, "is_readable_checkpoint")
    cli_main()
