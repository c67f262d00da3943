"""SpanBERT pretraining as a fairseq plugin (`--user-dir`, or installed as a package).

Importing it registers task, criterion and model `span_bert` with fairseq, and installs the fairseq
patches this process needs (`patches.apply`): none for a library user, the command patches in
fairseq's command-line programs, the training patches where training runs.
"""

import logging

from . import patches

# fairseq 0.12's import calls logging.basicConfig(level=DEBUG) (wav2vec2_classification; INFO in the
# speech tasks), which made every library's debug lines print for anyone who imports the plugin;
# fairseq-train has imported fairseq before the plugin, so there this changes nothing.
_root = logging.getLogger()
_root_level, _root_handlers = _root.level, _root.handlers[:]
try:
    from . import criterions, hub, models, tasks  # noqa: F401  (registers the components; the hub loader)
finally:
    _root.setLevel(_root_level)
    _root.handlers[:] = _root_handlers

patches.apply()

from .models.span_bert import SpanBertModel  # noqa: E402

__all__ = ["SpanBertModel"]
__version__ = "0.1.0"
