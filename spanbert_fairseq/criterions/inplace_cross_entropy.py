"""Summed softmax cross-entropy over vocabulary logits that turns the logits into their gradient.

A head's N x V logits are the largest tensors of a pretraining step. fairseq's cross_entropy keeps
three of that size alive (logits, fp32 log-probabilities, then the gradient); here backward writes
softmax - one_hot over the logits' own memory, so there is only the one. The softmax is taken in
fp32 whatever the logits' dtype, a chunk of rows at a time: fp16 logits get no full fp32 copy,
and on CPU a chunk's temporaries stay in cache instead of paging in fresh memory.
"""

import torch

# Logits per chunk. CPU: 4 MiB of fp32, cache-sized. GPU: larger, as each chunk costs kernel launches.
CHUNK_LOGITS = {"cpu": 1 << 20}
CHUNK_LOGITS_DEFAULT = 1 << 24


def cross_entropy_in_place(logits, targets):
    """(summed loss fp32, number of rows whose target has the top logit), with logits N x V, targets N.

    Backward overwrites `logits` with its gradient: nothing may read the logits after it.
    """
    return _InPlaceCrossEntropy.apply(logits, targets)


def _row_chunks(logits):
    per_chunk = CHUNK_LOGITS.get(logits.device.type, CHUNK_LOGITS_DEFAULT)
    step = max(1, per_chunk // max(1, logits.size(1)))
    return [slice(start, start + step) for start in range(0, logits.size(0), step)]


class _InPlaceCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, targets):
        target_log_prob = logits.new_empty(logits.size(0), dtype=torch.float32)  # N
        correct = logits.new_zeros((), dtype=torch.long)
        for rows in _row_chunks(logits):
            log_probs = torch.log_softmax(logits[rows], dim=1, dtype=torch.float32)
            target_log_prob[rows] = log_probs.gather(1, targets[rows, None]).squeeze(1)
            correct += (target_log_prob[rows] >= log_probs.amax(dim=1)).sum()
        ctx.save_for_backward(logits, targets)
        ctx.mark_non_differentiable(correct)
        return -target_log_prob.sum(), correct

    @staticmethod
    def backward(ctx, grad_loss, _grad_correct):
        logits, targets = ctx.saved_tensors
        for rows in _row_chunks(logits):
            out = logits[rows]
            grad = torch.softmax(out, dim=1, dtype=torch.float32)
            grad[torch.arange(grad.size(0), device=grad.device), targets[rows]] -= 1
            torch.mul(grad, grad_loss, out=out)
        return logits, None
