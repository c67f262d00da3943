"""The CPU dropout's masks: Bernoulli(1 - p), independent, seeded by torch, scaled as F.dropout."""

import math

import pytest
import torch
import torch.nn.functional as F

from spanbert_fairseq.models import compilation
from spanbert_fairseq.models.dropout import Dropout, attention, dropout, keep_mask

P = 0.1
N = 1_000_000


def kept(shape=(N,), p=P, seed=0):
    torch.manual_seed(seed)
    return dropout(torch.ones(shape), p, True).ne(0)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_rate_is_one_minus_p(p):
    # The kept share of 1M elements has standard deviation sqrt(p(1-p)/N) <= 5e-4; allow 5 of them.
    share = kept(p=p).double().mean().item()
    assert abs(share - (1 - p)) < 5 * math.sqrt(p * (1 - p) / N)


def test_neighbours_and_successive_draws_are_uncorrelated():
    # For independent indicators the sample correlation of N pairs has standard deviation 1/sqrt(N)
    # (1e-3 here); allow 5 of them. Neighbours share a 64-bit word of the generator.
    torch.manual_seed(0)
    first, second = (dropout(torch.ones(N), P, True).ne(0).double() for _ in range(2))
    for a, b in ((first[:-1], first[1:]), (first[0::2], first[1::2]), (first, second)):
        correlation = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
        assert abs(correlation) < 5 / math.sqrt(a.numel()), correlation


def test_kept_elements_are_scaled_like_f_dropout():
    x = torch.randn(4, 1000)
    torch.manual_seed(1)
    y = dropout(x, P, True)
    keep = y.ne(0)
    assert torch.equal(y[keep], x[keep] * (1 / (1 - P)))
    assert 0 < keep.sum() < keep.numel()
    # The same scaling as aten's dropout on the same mask.
    assert torch.allclose(y, torch.ops.aten.native_dropout_backward(x, keep, 1 / (1 - P)), rtol=0, atol=1e-6)


def test_torch_seed_fixes_the_mask_and_each_draw_is_new():
    assert torch.equal(kept(seed=3), kept(seed=3))
    assert not torch.equal(kept(seed=3), kept(seed=4))
    torch.manual_seed(3)
    assert not torch.equal(keep_mask(torch.empty(1000), 0.5), keep_mask(torch.empty(1000), 0.5))


def test_gradient_is_the_mask_times_the_scale():
    x = torch.randn(3, 7, 11, requires_grad=True)
    torch.manual_seed(2)
    y = dropout(x, P, True)
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, y.ne(0).float() * (1 / (1 - P)))


def test_eval_and_zero_p_return_the_input_and_p_one_zeros():
    x = torch.randn(5, 5)
    assert dropout(x, P, False) is x
    assert dropout(x, 0.0, True) is x
    assert torch.equal(dropout(x, 1.0, True), torch.zeros_like(x))
    module = Dropout(P).eval()
    assert module(x) is x and "p=0.1" in repr(module)


def reference_attention(q, k, v, attn_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    return scores.softmax(-1)


@pytest.mark.parametrize("padded", [False, True])
def test_attention_drops_the_weights_with_the_mask_dropout_draws(padded):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 9, 8), torch.randn(2, 3, 9, 8)
    attn_mask = torch.ones(2, 1, 1, 9, dtype=torch.bool)
    if padded:
        attn_mask[1, ..., 6:] = False
    else:
        attn_mask = None
    assert torch.allclose(attention(q, k, v, attn_mask, 0.0),
                          F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask), atol=1e-6)
    probs = reference_attention(q, k, v, attn_mask)
    torch.manual_seed(7)
    expected = dropout(probs, 0.3, True) @ v
    torch.manual_seed(7)
    assert torch.allclose(attention(q, k, v, attn_mask, 0.3), expected, atol=1e-6)


def test_compiled_draws_stay_apart():
    """torch.compile must not merge two draws of one shape into one mask."""
    if compilation.why_torch_cannot_compile():
        pytest.skip(f"cannot compile here ({compilation.why_torch_cannot_compile()})")
    torch._dynamo.reset()
    twice = torch.compile(lambda x: (dropout(x, 0.5, True), dropout(x, 0.5, True)), fullgraph=True)
    torch.manual_seed(0)
    first, second = twice(torch.ones(4096))
    assert first.ne(0).float().mean().item() == pytest.approx(0.5, abs=0.05)
    assert not torch.equal(first.ne(0), second.ne(0))
