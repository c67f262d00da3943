"""The training step waits for the device nowhere: forward and backward of a collated batch (model +
criterion) call no op whose result must come back to the host.

On a GPU each such op (nonzero, .item(), bool(t), boolean-mask indexing, ...) drains the device
queue, which with --update-freq > 1 still holds the previous micro-batch's backward. On CPU nothing
waits, so the ops are caught by name, with a dispatch mode that sees every aten call.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
# Ops whose output size or value the host must read before it can go on.
SYNCING = {
    aten.nonzero, aten._local_scalar_dense, aten.masked_select, aten.is_nonzero, aten.equal,
    aten.unique_dim, aten._unique, aten._unique2, aten.unique_consecutive, aten.unique_dim_consecutive,
    aten.bincount, aten.masked_scatter, aten.repeat_interleave, aten.allclose, aten.histc,
}


class HostSyncError(AssertionError):
    pass


class FailOnHostSync(TorchDispatchMode):
    """Raises at any op of SYNCING, and at indexing with a bool mask (aten.index / index_put)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket in SYNCING:
            raise HostSyncError(f"{func} waits for the device")
        if func.overloadpacket in (aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_):
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            if any(t is not None and t.dtype == torch.bool for t in indices):
                raise HostSyncError(f"{func} with a boolean mask waits for the device")
        return func(*args, **kwargs)


def test_the_detector_catches_what_the_old_step_did():
    x = torch.arange(6)
    for sync in (lambda: x.nonzero(), lambda: x[x > 2], lambda: bool(x.all()), lambda: int(x.max()),
                 lambda: x.unique(), lambda: x.masked_select(x > 1)):
        with pytest.raises(HostSyncError), FailOnHostSync():
            sync()
    with FailOnHostSync():
        x.index_select(0, torch.tensor([1, 2]))  # index tensors are fine


@pytest.mark.parametrize("flags", [
    dict(),
    dict(dropout=0.0, attention_dropout=0.0),  # SDPA's own path instead of dropout.py's
    dict(checkpoint_activations=True),
])
def test_forward_and_backward_of_a_collated_batch_have_no_host_sync(collated_batch, tiny_model_and_criterion,
                                                                    flags):
    batch = collated_batch()
    assert batch["net_input"]["padded"] is True and len(batch["sbo_targets"]) > 0
    model, criterion = tiny_model_and_criterion(**flags)
    with FailOnHostSync():
        loss, sample_size, _ = criterion(model, batch)
        loss.backward()
    assert torch.isfinite(loss) and sample_size == len(batch["mlm_targets"]) > 0
    assert all(p.grad is not None for p in model.parameters())


def test_an_unpadded_batch_takes_the_mask_free_path(collated_batch, tiny_model_and_criterion):
    batch = collated_batch(lengths=(30, 30))
    assert batch["net_input"]["padded"] is False
    model, criterion = tiny_model_and_criterion()
    seen = []
    model.encoder.bert.encoder.layer[0].register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    with FailOnHostSync():
        criterion(model, batch)[0].backward()
    assert seen == [None]  # no attention mask built: SDPA may take its mask-free kernel
