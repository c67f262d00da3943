"""The one way a patch replaces something of fairseq's: wrap it once, and mark the replacement."""

import inspect

MARK = "__spanbert_patch__"


def wrap(owner, name, make_replacement):
    """Set `owner.name` to `make_replacement(original)` unless it already is a replacement of ours.

    `original` is the attribute as code sees it (a classmethod comes bound); the mark goes on the
    object stored (a classmethod object, say), so the check also sees through descriptors.
    """
    if is_patched(owner, name):
        return
    replacement = make_replacement(getattr(owner, name))
    setattr(replacement, MARK, True)
    setattr(owner, name, replacement)


def is_patched(owner, name):
    return getattr(inspect.getattr_static(owner, name), MARK, False)
