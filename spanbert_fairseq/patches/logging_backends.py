"""Logging to TensorBoard or Weights & Biases fails at start, in one line, when it cannot work.

Defect (fairseq/logging/progress_bar.py): `--tensorboard-logdir` without a TensorBoard writer
installed logs a warning and writes nothing; `--wandb-project` without wandb logs "wandb not found"
once per epoch and trains on without logging. Either way the user finds out after the run.
Fix: the first progress bar of a run that asks for a backend it cannot use raises a
`UserInputError` naming the flag and the package to install.
"""

import importlib.util

from spanbert_text.errors import UserInputError

from .wrapping import wrap


def _missing_backend(tensorboard_logdir, wandb_project):
    from fairseq.logging import progress_bar

    if tensorboard_logdir and progress_bar.SummaryWriter is None:
        return f"--tensorboard-logdir {tensorboard_logdir}: no TensorBoard writer installed (pip install tensorboardX)"
    if wandb_project and importlib.util.find_spec("wandb") is None:
        return f"--wandb-project {wandb_project}: wandb is not installed (pip install wandb, then wandb login)"
    return None


def _make_progress_bar(original):
    def progress_bar(*args, tensorboard_logdir=None, wandb_project=None, **kwargs):
        problem = _missing_backend(tensorboard_logdir, wandb_project)
        if problem:
            raise UserInputError(problem)
        return original(*args, tensorboard_logdir=tensorboard_logdir, wandb_project=wandb_project, **kwargs)

    return progress_bar


def install():
    from fairseq.logging import progress_bar

    wrap(progress_bar, "progress_bar", _make_progress_bar)
