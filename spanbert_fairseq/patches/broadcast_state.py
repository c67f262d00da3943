"""Sending a resumed run's checkpoint state from rank 0 to the other ranks.

Defect (fairseq/distributed/utils.py: _broadcast_object_slow, which Trainer.load_checkpoint uses):
rank 0 `torch.save`s the state into a buffer and the other ranks `torch.load` it with torch's
default, since torch 2.6 the restricted unpickler, which refuses the omegaconf `DictConfig` that
`load_checkpoint_to_cpu` put in `state["cfg"]`: every resume with more than one rank dies on rank 1
("Unsupported global: GLOBAL omegaconf.dictconfig.DictConfig").
Fix: configs cross as the plain containers fairseq writes into the checkpoint file, and the other
ranks read the buffer as a checkpoint file is read: the restricted unpickler with
`checkpoint_io`'s allowlist (fairseq's meters hold numpy scalars), plus the placeholder fairseq
leaves where it took a tensor out to broadcast it directly.
"""

import io

import torch

from ..checkpoint_io import ALLOWED_GLOBALS
from .wrapping import wrap


def _plain(obj):
    """`obj` with every omegaconf config in its dicts, lists and tuples made a plain container."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(obj):
        return OmegaConf.to_container(obj)
    if isinstance(obj, dict):
        return type(obj)((key, _plain(value)) for key, value in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(value) for value in obj)
    return obj


def _make_broadcast_object_slow(original):
    from fairseq.distributed import utils as distributed_utils

    def _broadcast_object_slow(obj, src_rank, group, dist_device):
        if distributed_utils.get_rank(group) == src_rank:
            return original(_plain(obj), src_rank, group, dist_device)
        length = torch.LongTensor([0]).to(dist_device)
        distributed_utils.broadcast(length, src=src_rank, group=group)
        buffer = torch.ByteTensor(int(length.item())).to(dist_device)
        distributed_utils.broadcast(buffer, src=src_rank, group=group)
        with torch.serialization.safe_globals([*ALLOWED_GLOBALS, distributed_utils._TensorPlaceholder]):
            return torch.load(io.BytesIO(buffer.cpu().numpy()), map_location="cpu", weights_only=True)

    return _broadcast_object_slow


def install():
    from fairseq.distributed import utils as distributed_utils

    wrap(distributed_utils, "_broadcast_object_slow", _make_broadcast_object_slow)
