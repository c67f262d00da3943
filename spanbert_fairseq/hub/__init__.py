"""Loading trained models for inference and fine-tuning: `SpanBertModel.from_pretrained` and torch.hub."""

from ..models.span_bert import SpanBertModel
from .hub_interface import SpanBertHubInterface
from .loading import from_pretrained

SpanBertModel.hub_loader = staticmethod(from_pretrained)

__all__ = ["SpanBertHubInterface", "from_pretrained"]
