"""A library user who imports the plugin and loads a model changes no global of fairseq's or torch's:
no patched function, class attribute, signal handler, excepthook, logging or warnings setting.
Registries take the plugin's components: fairseq's, and torch's operator registry its `spanbert::` ops.
(The patches are for fairseq's command-line programs; spanbert_fairseq/patches/__init__.py.)"""

import json
import subprocess
import sys

PROBE = r"""
import json, logging, signal, sys, warnings
import torch, fairseq, fairseq.checkpoint_utils, fairseq.trainer, fairseq.optim.fp16_optimizer, fairseq_cli.train

def snapshot():
    state = {}
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in ("fairseq", "fairseq_cli", "torch"):
            continue
        for attr, value in list(vars(module).items()):
            # A set is compared by content (torch's safe_globals context rebinds its set on exit), but
            # fairseq's registries (*_CLASS_NAMES, and every dict by identity) may gain our components.
            by_content = isinstance(value, set) and not attr.endswith("_CLASS_NAMES")
            if name == "torch.library" and by_content:
                # torch's operator registry may gain the plugin's own ops (namespace spanbert), only.
                value = {op for op in value if not op.startswith(("spanbert::", "spanbert/"))}
            state[f"{name}.{attr}"] = repr(sorted(map(repr, value))) if by_content else id(value)
            if isinstance(value, type) and value.__module__ == name:
                for key, member in list(vars(value).items()):
                    state[f"{name}.{attr}.{key}"] = id(member)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD):
        state[f"signal {signum.name}"] = repr(signal.getsignal(signum))
    state["sys.excepthook"] = id(sys.excepthook)
    root = logging.getLogger()
    state["root logger"] = [root.level, [id(h) for h in root.handlers]]
    state["warnings.filters"] = repr(warnings.filters)
    return state

before = snapshot()
from spanbert_fairseq import SpanBertModel
hub = SpanBertModel.from_pretrained(sys.argv[1], "checkpoint_last.pt")
hub.fill_mask("the [MASK] statement")
hub.fill_spans("the [MASK] [MASK] statement")
hub.extract_features(hub.encode("the return statement"), return_all_hiddens=True)
after = snapshot()
print(json.dumps(sorted(k for k in before if k in after and before[k] != after[k])))
"""


def test_loading_a_model_changes_no_fairseq_or_torch_global(trained_save_dir):
    run = subprocess.run([sys.executable, "-c", PROBE, str(trained_save_dir)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    changed = json.loads(run.stdout.strip().splitlines()[-1])
    assert changed == [], changed
