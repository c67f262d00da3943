"""cross_entropy_in_place equals summed F.cross_entropy with an fp32 softmax, in value and gradient."""

import pytest
import torch
import torch.nn.functional as F

from spanbert_fairseq.criterions import inplace_cross_entropy
from spanbert_fairseq.criterions.inplace_cross_entropy import cross_entropy_in_place


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    # 5,000 logits per chunk: rows of 1,000 go 5 to a chunk, so every test crosses chunk boundaries.
    monkeypatch.setattr(inplace_cross_entropy, "CHUNK_LOGITS", {"cpu": 5_000})


def reference(logits, targets, grad_scale):
    """Loss and logits-gradient by autograd through fp32 log_softmax (fairseq's cross_entropy)."""
    x = logits.detach().float().requires_grad_()
    loss = F.cross_entropy(x, targets, reduction="sum")
    (loss * grad_scale).backward()
    return loss.detach(), x.grad


def fp16_log_prob_loss(logits, targets):
    """The summed loss with log-probabilities rounded to the logits' fp16: the precision fp32 avoids."""
    return -torch.log_softmax(logits, dim=1).gather(1, targets[:, None]).float().sum()


def run(logits, targets, grad_scale):
    """Our loss, correct count, and the gradient that reached the logits' producer."""
    leaf = logits.detach().clone().requires_grad_()
    produced = leaf * 1  # a non-leaf, as the projection's output is
    produced.retain_grad()
    loss, correct = cross_entropy_in_place(produced, targets)
    (loss * grad_scale).backward()
    return loss.detach(), correct, produced.grad


@pytest.mark.parametrize("rows", [0, 1, 23])
def test_fp32_matches_f_cross_entropy(rows):
    g = torch.Generator().manual_seed(rows)
    logits = torch.randn(rows, 1000, generator=g) * 4
    targets = torch.randint(0, 1000, (rows,), generator=g)
    targets[: rows // 2] = logits[: rows // 2].argmax(1)  # about half the rows predicted correctly
    loss, correct, grad = run(logits, targets, grad_scale=3.5)
    ref_loss, ref_grad = reference(logits, targets, grad_scale=3.5)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)  # exp(x - lse) vs exp(x - max) / sum
    assert int(correct) == int((logits.argmax(1) == targets).sum())


def test_fp16_logits_get_an_fp32_softmax():
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(17, 1000, generator=g) * 4).half()
    targets = torch.randint(0, 1000, (17,), generator=g)
    loss, _, grad = run(logits, targets, grad_scale=1024.0)  # a loss scale, as fp16 training uses
    ref_loss, ref_grad = reference(logits, targets, grad_scale=1024.0)
    # The fp16 logits upcast exactly, so only fp32 rounding separates the losses. Log-probabilities
    # kept in fp16 would miss by far more: the bound is a tenth of that miss.
    assert loss.dtype == torch.float32
    assert abs(loss - ref_loss) <= abs(fp16_log_prob_loss(logits, targets) - ref_loss) / 10
    assert grad.dtype == torch.float16
    torch.testing.assert_close(grad.float(), ref_grad.half().float(), rtol=2**-10, atol=1e-7)  # one fp16 step


def test_backward_recycles_the_logits_memory():
    logits = torch.randn(6, 50).requires_grad_()
    produced = logits * 1
    loss, _ = cross_entropy_in_place(produced, torch.arange(6))
    storage = produced.data_ptr()
    produced.register_hook(lambda grad: seen.append(grad.data_ptr()))
    seen = []
    loss.backward()
    assert seen == [storage]
    torch.testing.assert_close(logits.grad.sum(1), torch.zeros(6), atol=1e-6, rtol=0)  # softmax - one_hot rows sum to 0
