"""Silence the warnings fairseq 0.12's own internals raise on every ordinary command.

Defect: each fairseq-train run prints a dozen lines before any progress that say nothing about
the user's run: Hydra's deprecation notices for the way fairseq builds its config (experimental
APIs, `_group_` package headers, schema matching, the strict flag, version_base), torch's
"pin_memory ... no accelerator" (fairseq always asks for pinned memory), and the FutureWarning for
fairseq's `torch.cuda.amp.autocast(...)`. Users learn to ignore warnings, and then miss real ones.
Fix: filters matched on those exact messages (and Hydra's own modules); every other warning shows.
"""

import warnings

from .wrapping import MARK

_FILTERS = (
    (UserWarning, r"", r"hydra\."),  # Hydra's deprecation notices, raised inside Hydra for fairseq's calls
    (UserWarning, r"(?s).*is validated against ConfigStore schema", r""),
    (Warning, r"(?s).*The version_base parameter is not specified", r""),
    (UserWarning, r"'pin_memory' argument is set as true but no accelerator", r""),
    (FutureWarning, r"`torch.cuda.amp.autocast\(args...\)` is deprecated", r"fairseq\."),
)


def install():
    if getattr(warnings, MARK, False):
        return
    for category, message, module in _FILTERS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    setattr(warnings, MARK, True)
