"""project_to_vocabulary: the heads' logits and every gradient equal separate tied F.linear calls."""

import torch
import torch.nn.functional as F

from spanbert_fairseq.models.heads import project_to_vocabulary


def leaves(*shapes, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=torch.float64).requires_grad_() for s in shapes]


def test_matches_separate_tied_linears_in_value_and_gradient():
    weight, mlm_rows, mlm_bias, sbo_rows, sbo_bias = leaves((11, 4), (3, 4), (11,), (5, 4), (11,), seed=0)
    ours = project_to_vocabulary(weight, [(mlm_rows, mlm_bias), (sbo_rows, sbo_bias)])
    theirs = [F.linear(mlm_rows, weight, mlm_bias), F.linear(sbo_rows, weight, sbo_bias)]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
    inputs = (weight, mlm_rows, mlm_bias, sbo_rows, sbo_bias)
    upstream = [torch.randn_like(t) for t in ours]
    grads_ours = torch.autograd.grad(ours, inputs, upstream)
    grads_theirs = torch.autograd.grad(theirs, inputs, upstream)
    for a, b in zip(grads_ours, grads_theirs):
        torch.testing.assert_close(a, b)


def test_gradcheck_including_a_head_outside_the_loss():
    weight, rows, bias, other_rows, other_bias = leaves((7, 3), (4, 3), (7,), (2, 3), (7,), seed=1)

    def first_head_only(w, x, b, x2, b2):
        return project_to_vocabulary(w, [(x, b), (x2, b2)])[0]

    assert torch.autograd.gradcheck(first_head_only, (weight, rows, bias, other_rows, other_bias))
    assert torch.autograd.gradcheck(
        lambda w, x, b: project_to_vocabulary(w, [(x, b)])[0].pow(2), (weight, rows, bias)
    )


def test_empty_head():
    weight, rows, bias, empty, empty_bias = leaves((7, 3), (4, 3), (7,), (0, 3), (7,), seed=2)
    logits, none = project_to_vocabulary(weight, [(rows, bias), (empty, empty_bias)])
    assert none.shape == (0, 7)
    (logits.sum() + none.sum()).backward()
    torch.testing.assert_close(empty_bias.grad, torch.zeros(7, dtype=torch.float64))
    torch.testing.assert_close(weight.grad, torch.ones(4, 7, dtype=torch.float64).t() @ rows.detach())


def test_autocast_gradients_reach_fp32_parameters():
    # Mixed precision as the GPU benchmark runs it (autocast; bf16 here, as CPU autocast has it):
    # half logits, fp32 weights and rows; every gradient comes back in its parameter's dtype.
    weight, rows, bias, other_rows, other_bias = (t.float().detach().requires_grad_() for t in
                                                  leaves((11, 4), (3, 4), (11,), (5, 4), (11,), seed=3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = project_to_vocabulary(weight, [(rows, bias), (other_rows, other_bias)])
    assert all(t.dtype == torch.bfloat16 for t in logits)
    sum(t.float().sum() for t in logits).backward()
    for param in (weight, rows, bias, other_rows, other_bias):
        assert param.grad.dtype == torch.float32
    torch.testing.assert_close(weight.grad, torch.ones(11, 8) @ torch.cat([rows, other_rows]).detach(),
                               rtol=2e-2, atol=2e-2)
