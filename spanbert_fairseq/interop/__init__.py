"""Checkpoint interop: spanbert-import (BERT / SpanBERT -> span_bert) and spanbert-export
(span_bert -> HuggingFace). Formats and commands: docs/interop.md."""
