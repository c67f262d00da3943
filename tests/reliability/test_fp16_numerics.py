"""--memory-efficient-fp16 on CPU: finite losses, fp32 softmax in both heads, overflow handling.

fairseq's own Trainer and loss scaler run in this process on the tiny data (spanbert_tiny, blocks of
30 tokens, 4 per batch), so the test sees every update rather than a log.
"""

import logging
import math
import os

import pytest
import torch

import spanbert_fairseq
from spanbert_fairseq.patches import cpu_fp16

USER_DIR = os.path.dirname(spanbert_fairseq.__file__)
UPDATES = 200
cpu_fp16.install()  # what fairseq-train gets on a machine without CUDA


@pytest.fixture(autouse=True)
def one_thread():
    """fp16 matmuls on CPU are slow; with threads contending for shared cores they crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build_trainer(data_dir, *flags):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.trainer import Trainer

    argv = [
        str(data_dir), "--user-dir", USER_DIR, "--task", "span_bert", "--criterion", "span_bert",
        "--arch", "spanbert_tiny", "--tokens-per-sample", "32", "--batch-size", "4",
        "--optimizer", "adam", "--lr", "1e-3", "--cpu", "--memory-efficient-fp16", "--seed", "1",
        "--num-workers", "0", *flags,
    ]  # fmt: skip
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    task = tasks.setup_task(cfg.task)
    model, criterion = task.build_model(cfg.model), task.build_criterion(cfg.criterion)
    trainer = Trainer(cfg, task, model, criterion)
    return trainer, trainer.get_train_iterator(epoch=1, load_dataset=True)


def batches(epoch_itr):
    while True:
        yield from epoch_itr.next_epoch_itr(shuffle=True)


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_both_heads_take_their_softmax_in_fp32(tiny_data_dir):
    trainer, epoch_itr = build_trainer(tiny_data_dir)
    model = trainer.model.half()
    sample = next(batches(epoch_itr))
    head_logits = []
    model.encoder.register_forward_hook(lambda module, args, out: head_logits.extend(out))
    with torch.no_grad():
        loss, _, logging_output = trainer.criterion(model, sample)
    mlm_logits, sbo_logits = head_logits
    assert mlm_logits.dtype == sbo_logits.dtype == torch.float16
    pad = trainer.task.dictionary.pad()
    mlm_targets = sample["target"][sample["target"].ne(pad)]
    sbo_targets = sample["pair_targets"][sample["pair_targets"].ne(pad)]
    # The same fp16 logits through an fp32 log_softmax: equal up to fp32 rounding. Log-probabilities
    # kept in fp16 would miss by far more: the bound is a tenth of that miss.
    for logits, targets, key in ((mlm_logits, mlm_targets, "mlm_loss"), (sbo_logits, sbo_targets, "sbo_loss")):
        reference = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
        fp16_log_probs = -torch.log_softmax(logits, dim=1).gather(1, targets[:, None]).float().sum()
        assert abs(logging_output[key] - reference) <= abs(fp16_log_probs - reference) / 10, key
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_a_few_hundred_fp16_updates_give_finite_losses(tiny_data_dir):
    trainer, epoch_itr = build_trainer(tiny_data_dir)
    losses, overflows = [], 0
    for sample in batches(epoch_itr):
        log = trainer.train_step([sample])
        if log is None:  # overflow: fairseq skipped the update
            overflows += 1
            continue
        losses.append((log["mlm_loss"], log["sbo_loss"]))
        if trainer.get_num_updates() == UPDATES:
            break
    bad = [(i, m, s) for i, (m, s) in enumerate(losses) if not (math.isfinite(m) and math.isfinite(s))]
    assert not bad, f"non-finite losses at updates {bad[:5]}"
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    # It learns: the mean MLM loss of the last 40 updates is below that of the first 40 (bits/token).
    first, last = (sum(m for m, _ in losses[s]) / 40 for s in (slice(0, 40), slice(-40, None)))
    assert last < first - 0.5, (first, last, overflows)


def test_overflow_skips_the_update_and_halves_the_loss_scale(tiny_data_dir, caplog):
    """A loss scale of 2^20 overflows fp16 (max 65504) at once: the update must be skipped."""
    trainer, epoch_itr = build_trainer(tiny_data_dir, "--fp16-init-scale", str(2**20))
    stream = batches(epoch_itr)
    scales, skipped = [], 0
    with caplog.at_level(logging.INFO, logger="fairseq.trainer"):
        while trainer.get_num_updates() == 0:
            before = snapshot(trainer.model)
            log = trainer.train_step([next(stream)])
            scales.append(trainer.optimizer.scaler.loss_scale)
            if log is not None:
                break
            skipped += 1
            after = snapshot(trainer.model)
            assert all(torch.equal(before[n], after[n]) for n in before), "an overflowing step changed weights"
            assert skipped < 30, scales
    assert skipped >= 1, "2^20 did not overflow; the test needs a larger --fp16-init-scale"
    assert scales[:skipped] == [2.0 ** (20 - k) for k in range(1, skipped + 1)]
    assert trainer.get_num_updates() == 1
    assert caplog.text.count("gradient overflow detected") == skipped
