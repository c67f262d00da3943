"""What importing the plugin does to the process beyond fairseq's registries."""

import subprocess
import sys


def test_importing_the_plugin_leaves_the_root_logger_alone():
    # fairseq 0.12's import alone sets the root logger to DEBUG with a stderr handler.
    probe = (
        "import logging, spanbert_fairseq, fairseq; r = logging.getLogger(); "
        "print(r.level, len(r.handlers), 'span_bert' in fairseq.tasks.TASK_REGISTRY)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(30), "0", "True"]  # WARNING, no handler, and the plugin registered
