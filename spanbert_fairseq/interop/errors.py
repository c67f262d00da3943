"""The one error type of the interop tools."""

from spanbert_text.errors import UserInputError


class InteropError(UserInputError):
    """A checkpoint, vocabulary or config that cannot be converted; the message says why."""
