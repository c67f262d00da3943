"""--checkpoint-activations: each encoder layer recomputed in the backward, with the same losses and
gradients as keeping its activations (dropout masks included: the recomputation replays torch's RNG,
from which dropout.py seeds its masks)."""

import pytest
import torch

from spanbert_fairseq.models.bert_encoder import BertLayer


@pytest.fixture
def layer_calls(monkeypatch):
    """How often BertLayer.forward runs (the recomputation calls it without module hooks)."""
    calls = []
    forward = BertLayer.forward

    def counted(self, *args, **kwargs):
        calls.append(torch.is_grad_enabled())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(BertLayer, "forward", counted)
    return calls


def loss_and_grads(model, criterion, batch, seed=1):
    torch.manual_seed(seed)  # the dropout masks of this step
    loss, _, _ = criterion(model, batch)
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_same_loss_and_gradients_as_without(collated_batch, tiny_model_and_criterion, layer_calls, dropout):
    batch = collated_batch()
    flags = dict(dropout=dropout, attention_dropout=dropout)
    plain = loss_and_grads(*tiny_model_and_criterion(**flags), batch)
    assert len(layer_calls) == 2
    model, criterion = tiny_model_and_criterion(**flags, checkpoint_activations=True)
    checkpointed = loss_and_grads(model, criterion, batch)
    assert len(layer_calls) == 2 + 2 * 2  # each layer ran twice: forward, then again in the backward
    torch.testing.assert_close(checkpointed[0], plain[0], rtol=1e-6, atol=1e-6)
    for name, grad in plain[1].items():
        torch.testing.assert_close(checkpointed[1][name], grad, rtol=1e-5, atol=1e-7, msg=name)
    if dropout:  # and the masks were really random: another seed gives another loss
        assert not torch.equal(loss_and_grads(model, criterion, batch, seed=2)[0], plain[0])


def test_no_recomputation_without_gradients(collated_batch, tiny_model_and_criterion, layer_calls):
    model, criterion = tiny_model_and_criterion(checkpoint_activations=True)
    with torch.no_grad():
        criterion(model.eval(), collated_batch())
    assert layer_calls == [False, False]
