"""The span_bert criterion on synthetic batches built to the batch contract (docs/DESIGN.md)."""

import math
from argparse import Namespace

import pytest
import torch
import torch.nn.functional as F
from fairseq.logging import metrics

from spanbert_fairseq.criterions.span_bert import SpanBertCriterionConfig, SpanBertLoss
from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.data.head_rows import head_rows
from spanbert_fairseq.models.span_bert import SpanBertEncoder, SpanBertModel, SpanBertModelConfig

P = 15  # max_pair_targets


@pytest.fixture(scope="module")
def dictionary(bert_vocab):
    return BertDictionary.load(str(bert_vocab))


@pytest.fixture(scope="module")
def model(dictionary):
    cfg = SpanBertModelConfig(encoder_layers=1, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
                              encoder_attention_heads=2, max_pair_targets=15)
    torch.manual_seed(0)
    return SpanBertModel(cfg, SpanBertEncoder(cfg, dictionary)).eval()


def contract_batch(dictionary, spans_per_sample, lengths, seed=0):
    """`[CLS] block [SEP]` rows with the given (start, end) spans (block positions, inclusive)."""
    g = torch.Generator().manual_seed(seed)
    pad, B, T = dictionary.pad(), len(lengths), max(lengths) + 2
    K = max(len(s) for s in spans_per_sample)
    src = torch.full((B, T), pad)
    target = torch.full((B, T), pad)
    pairs = torch.zeros(B, K, 2, dtype=torch.long)
    pair_targets = torch.full((B, K, P), pad)
    for b, (n, spans) in enumerate(zip(lengths, spans_per_sample)):
        block = torch.randint(1000, len(dictionary), (n,), generator=g)
        src[b, 1:n + 1] = block
        src[b, 0], src[b, n + 1] = dictionary.cls(), dictionary.sep()
        for k, (s, e) in enumerate(spans):
            target[b, s + 1:e + 2] = block[s:e + 1]
            src[b, s + 1:e + 2] = dictionary.mask()
            pairs[b, k] = torch.tensor([s, e + 2])  # (s - 1) + 1 and (e + 1) + 1 in src_tokens
            pair_targets[b, k, :e - s + 1] = block[s:e + 1][:P]
    return with_head_rows({
        "id": torch.arange(B),
        "nsentences": B,
        "ntokens": int(src.ne(pad).sum()),
        "net_input": {"src_tokens": src, "src_lengths": torch.tensor(lengths) + 2},
        "target": target,
        "pairs": pairs,
        "pair_targets": pair_targets,
    }, pad)


def with_head_rows(sample, pad):
    """The collater's head-row keys for a sample built (or edited) by hand."""
    net = sample["net_input"]
    rows = head_rows(net["src_tokens"], sample["target"], pad, sample["pairs"], sample["pair_targets"])
    net.update(rows.net_input())
    return {**sample, "mlm_targets": rows.mlm_targets, "sbo_targets": rows.sbo_targets}


def criterion(dictionary, sbo_weight=1.0):
    task = Namespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return SpanBertLoss(SpanBertCriterionConfig(sbo_weight=sbo_weight), task)


def reference_losses(model, sample, pad):
    """Each term computed the slow way: the model on every position, then CE at the targets."""
    enc = model.encoder
    features = model.extract_features(sample["net_input"]["src_tokens"])
    W = enc.embed_weight
    masked = sample["target"].ne(pad)
    mlm_logits = F.linear(enc.mlm_head(features[masked]), W, enc.mlm_head.bias)
    mlm = F.cross_entropy(mlm_logits, sample["target"][masked], reduction="sum")
    sbo = torch.zeros(())
    for b, k, i in sample["pair_targets"].ne(pad).nonzero().tolist():
        left, right = sample["pairs"][b, k]
        h = torch.cat([features[b, left], features[b, right], enc.sbo_head.position_embeddings.weight[i]])
        logits = F.linear(enc.sbo_head.mlp(h), W, enc.sbo_head.bias)
        sbo = sbo + F.cross_entropy(logits[None], sample["pair_targets"][b, k, i][None], reduction="sum")
    return mlm, sbo


SPANS = [[(2, 4), (9, 9)], [(0, 1), (5, 7)]]  # sample 1's first span touches the block edge


def test_loss_is_mlm_sum_plus_weighted_sbo_sum(dictionary, model):
    sample = contract_batch(dictionary, SPANS, [14, 10])
    # A span at a block edge has no SBO target: the task leaves it out of pairs.
    sample["pairs"][1, 0] = 0
    sample["pair_targets"][1, 0] = dictionary.pad()
    sample = with_head_rows(sample, dictionary.pad())
    with torch.no_grad():
        mlm, sbo = reference_losses(model, sample, dictionary.pad())
        for w in (1.0, 0.5):
            loss, sample_size, log = criterion(dictionary, w)(model, sample)
            torch.testing.assert_close(loss, mlm + w * sbo)
    assert sample_size == 3 + 1 + 2 + 3 == log["mlm_targets"]
    assert log["sbo_targets"] == 3 + 1 + 3
    torch.testing.assert_close(log["mlm_loss"], mlm)
    torch.testing.assert_close(log["sbo_loss"], sbo)


def test_reduce_metrics_reports_every_documented_value():
    """Two workers' logging outputs, made up so that every value can be worked out by hand."""
    logs = [
        {"loss": torch.tensor(12.0), "mlm_loss": torch.tensor(6.0), "sbo_loss": torch.tensor(6.0),
         "mlm_correct": torch.tensor(1), "sbo_correct": torch.tensor(0), "mlm_targets": 4, "sbo_targets": 3,
         "sample_size": 4, "ntokens": 20, "nsentences": 2},
        {"loss": torch.tensor(5.0), "mlm_loss": torch.tensor(2.0), "sbo_loss": torch.tensor(3.0),
         "mlm_correct": torch.tensor(3), "sbo_correct": torch.tensor(1), "mlm_targets": 4, "sbo_targets": 2,
         "sample_size": 4, "ntokens": 18, "nsentences": 2},
    ]  # fmt: skip
    assert SpanBertLoss.logging_outputs_can_be_summed()
    with metrics.aggregate() as agg:
        SpanBertLoss.reduce_metrics(logs)
    values = agg.get_smoothed_values()
    bits = math.log(2)
    assert values["loss"] == pytest.approx(17 / 8 / bits, abs=1e-3)  # per MLM target (sample_size)
    assert values["mlm_loss"] == pytest.approx(8 / 8 / bits, abs=1e-3)
    assert values["sbo_loss"] == pytest.approx(9 / 5 / bits, abs=1e-3)
    assert values["ppl"] == pytest.approx(math.e, abs=0.01)  # 1 nat per MLM target
    assert values["mlm_acc"] == pytest.approx(100 * 4 / 8) and values["sbo_acc"] == pytest.approx(100 * 1 / 5)
    assert values["mlm_targets"] == 8 and values["sbo_targets"] == 5


def test_half_precision_logits_give_fp32_loss(dictionary, model):
    sample = contract_batch(dictionary, SPANS, [14, 10])
    half = SpanBertModel(model.cfg, SpanBertEncoder(model.cfg, dictionary)).eval()
    half.load_state_dict(model.state_dict())
    half.half()
    with torch.no_grad():
        loss, _, log = criterion(dictionary)(half, sample)
        ref, _, _ = criterion(dictionary)(model, sample)
    assert loss.dtype == log["mlm_loss"].dtype == log["sbo_loss"].dtype == torch.float32
    torch.testing.assert_close(loss, ref, rtol=2e-2, atol=0)


def test_batch_without_targets_gives_zero_loss(dictionary, model):
    sample = contract_batch(dictionary, [[], []], [6, 4])
    sample["pairs"] = torch.zeros(2, 0, 2, dtype=torch.long)
    sample["pair_targets"] = torch.full((2, 0, P), dictionary.pad())
    sample = with_head_rows(sample, dictionary.pad())
    loss, sample_size, log = criterion(dictionary)(model, sample)
    assert sample_size == 0 and float(loss.detach()) == 0.0


def test_autocast_step_gives_fp32_loss_and_gradients(dictionary, model):
    # The GPU benchmark's mixed precision (autocast), with CPU autocast's bf16: both heads' logits
    # are half, the loss and every parameter gradient fp32 and finite.
    sample = contract_batch(dictionary, SPANS, [14, 10])
    model = SpanBertModel(model.cfg, SpanBertEncoder(model.cfg, dictionary)).train()  # own copy: grads, train mode
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _, _ = criterion(dictionary)(model, sample)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert model.encoder.embed_weight.grad.abs().sum() > 0
