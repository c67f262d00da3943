"""SpanBERT pretraining as a fairseq plugin (`--user-dir`, or installed as a package)."""

from .compat import apply_fairseq_patches, root_logging_kept

with root_logging_kept():  # the first `import fairseq` happens here for a library user
    apply_fairseq_patches()
    from . import criterions, models, tasks  # noqa: F401  (registers the components)
    from .models.span_bert import SpanBertModel  # noqa: F401

__version__ = "0.1.0"
