"""Every change the plugin makes to fairseq (and, through it, torch), listed in one place.

Each patch is a module here whose docstring names the fairseq 0.12 defect it fixes; `wrapping.wrap`
installs it once. Nothing is installed for a library user (the hub, spanbert-import, a notebook):
`apply()` installs the command patches in fairseq's command-line programs, and the training patches
only where training runs (fairseq-train, fairseq-hydra-train, `python -m fairseq_cli.train`).
"""

from . import (
    atomic_checkpoints,
    broadcast_state,
    cli_errors,
    cpu_fp16,
    logging_backends,
    preemption,
    quiet_warnings,
    resume_fallback,
    safe_loading,
    sentence_prediction_dictionary,
    torchrun_launch,
)

# Any fairseq command: checkpoints load safely, input errors print as one line, torchrun ranks,
# fairseq's internal noise filtered, sentence_prediction reads BERT ids.
COMMAND_PATCHES = (safe_loading, cli_errors, torchrun_launch, quiet_warnings, sentence_prediction_dictionary)
# Training only: crash-safe checkpoint files, resume fallback and finished runs, the resumed state
# broadcast to every rank, signals, CPU fp16, logging backends checked at start.
TRAINING_PATCHES = (atomic_checkpoints, resume_fallback, broadcast_state, preemption, cpu_fp16, logging_backends)
TRAINING_PROGRAMS = ("train", "hydra_train")


def apply(program=None):
    """Install the patches `program` (default: this process's fairseq command) needs; returns them."""
    program = program or cli_errors.fairseq_program()
    if program is None:
        return ()
    patches = COMMAND_PATCHES + (TRAINING_PATCHES if program in TRAINING_PROGRAMS else ())
    for patch in patches:
        patch.install()
    return patches
