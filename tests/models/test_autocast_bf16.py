"""--autocast-bf16: the forward in bf16 autocast with fp32 weights, gradients and loss (on CPU, which
has bf16 autocast too), close to the fp32 model it starts from."""

from argparse import Namespace

import pytest
import torch

from spanbert_fairseq.criterions.span_bert import SpanBertCriterionConfig, SpanBertLoss
from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.data.head_rows import head_rows
from spanbert_fairseq.models.span_bert import (
    SpanBertEncoder,
    SpanBertModel,
    SpanBertModelConfig,
    check_precision_flags,
)
from spanbert_text.errors import UserInputError

TINY = dict(encoder_layers=2, encoder_embed_dim=64, encoder_ffn_embed_dim=128, encoder_attention_heads=4,
            dropout=0.0, attention_dropout=0.0, max_pair_targets=15)


@pytest.fixture(scope="module")
def dictionary(bert_vocab):
    return BertDictionary.load(str(bert_vocab))


def model_and_loss(dictionary, **flags):
    cfg = SpanBertModelConfig(**TINY, **flags)
    torch.manual_seed(0)
    model = SpanBertModel(cfg, SpanBertEncoder(cfg, dictionary)).train()
    task = Namespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return model, SpanBertLoss(SpanBertCriterionConfig(), task)


def sample(dictionary, B=2, T=40, seed=0):
    """Spans 5..8 and 20..22 of every row masked; their boundaries as SBO pairs."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1000, len(dictionary), (B, T), generator=g)
    target = torch.full_like(tokens, dictionary.pad())
    pair_targets = torch.full((B, 2, 15), dictionary.pad())
    for k, (s, e) in enumerate([(5, 8), (20, 22)]):
        target[:, s:e + 1] = tokens[:, s:e + 1]
        pair_targets[:, k, :e - s + 1] = tokens[:, s:e + 1]
        tokens[:, s:e + 1] = dictionary.mask()
    pairs = torch.tensor([[4, 9], [19, 23]]).expand(B, 2, 2)
    rows = head_rows(tokens, target, dictionary.pad(), pairs, pair_targets)
    return {"net_input": {"src_tokens": tokens, **rows.net_input()}, "mlm_targets": rows.mlm_targets,
            "sbo_targets": rows.sbo_targets, "ntokens": B * T, "nsentences": B}


def linear_output_dtypes(model, batch):
    """The dtype of every nn.Linear's output (and the fused QKV GEMM's) in one forward."""
    dtypes = {}

    def record(name):
        def hook(module, inputs, output):
            dtypes[name] = output.dtype  # returns None: the output stays as it is

        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in model.named_modules()
             if isinstance(m, torch.nn.Linear)]
    try:
        logits = model(**batch["net_input"])
    finally:
        for hook in hooks:
            hook.remove()
    return dtypes, logits


def test_bf16_autocast_keeps_weights_gradients_and_loss_in_fp32(dictionary):
    fp32, criterion = model_and_loss(dictionary)
    bf16, _ = model_and_loss(dictionary, autocast_bf16=True)
    batch = sample(dictionary)

    logits = bf16(**batch["net_input"])
    assert all(t.dtype == torch.bfloat16 for t in logits)  # the forward did run under autocast

    losses, grads = [], []
    for model in (fp32, bf16):
        loss, _, _ = criterion(model, batch)
        loss.backward()
        losses.append(loss)
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert losses[1].dtype == torch.float32
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in bf16.parameters())
    # bf16 keeps 8 bits of mantissa: the loss within a percent, the gradient pointing the same way.
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-2, atol=0.0)
    assert torch.nn.functional.cosine_similarity(grads[1], grads[0], dim=0) > 0.99
    assert not torch.equal(grads[1], grads[0])  # and not the fp32 computation itself


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_the_callers_autocast_reaches_every_gemm(dictionary, dtype):
    # fairseq's --amp (and a benchmark's autocast) wrap the model; nothing inside may switch it off.
    model, _ = model_and_loss(dictionary)
    batch = sample(dictionary)
    with torch.autocast("cpu", dtype=dtype):
        dtypes, logits = linear_output_dtypes(model, batch)
    # The fused q/k/v GEMM is F.linear on concatenated weights: only `query` of the last layer,
    # which runs on the selected rows alone, is called as a module; the rest are all modules.
    assert len(dtypes) >= 2 * 3 + 4 and set(dtypes.values()) == {dtype}, dtypes
    assert all(t.dtype == dtype for t in logits)
    plain, _ = linear_output_dtypes(model, batch)
    assert set(plain.values()) == {torch.float32}  # no autocast: fp32 throughout


@pytest.mark.parametrize("flags", [dict(fp16=True), dict(memory_efficient_fp16=True)])
def test_bf16_autocast_with_fp16_weights_is_refused_when_the_model_is_built(flags):
    cfg = SpanBertModelConfig(**TINY, autocast_bf16=True, **flags)
    flag = "--" + next(iter(flags)).replace("_", "-")
    with pytest.raises(UserInputError, match=f"--autocast-bf16 .* and {flag} makes them fp16"):
        check_precision_flags(cfg)
    check_precision_flags(SpanBertModelConfig(**TINY, **flags))  # either alone is fine
    check_precision_flags(SpanBertModelConfig(**TINY, autocast_bf16=True))
