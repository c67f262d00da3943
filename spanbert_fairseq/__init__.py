"""SpanBERT pretraining as a fairseq plugin (`--user-dir`, or installed as a package)."""

from .compat import apply_fairseq_patches

apply_fairseq_patches()

from . import criterions, models, tasks  # noqa: E402,F401  (registers the components)
from .models.span_bert import SpanBertModel  # noqa: E402,F401

__version__ = "0.1.0"
