"""--autocast-bf16: the forward in bf16 autocast with fp32 weights, gradients and loss (on CPU, which
has bf16 autocast too), close to the fp32 model it starts from."""

from argparse import Namespace

import pytest
import torch

from spanbert_fairseq.criterions.span_bert import SpanBertCriterionConfig, SpanBertLoss
from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.models.span_bert import SpanBertEncoder, SpanBertModel, SpanBertModelConfig
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
    return {"net_input": {"src_tokens": tokens, "pairs": pairs}, "target": target, "pair_targets": pair_targets,
            "ntokens": B * T, "nsentences": B}


def test_bf16_autocast_keeps_weights_gradients_and_loss_in_fp32(dictionary):
    fp32, criterion = model_and_loss(dictionary)
    bf16, _ = model_and_loss(dictionary, autocast_bf16=True)
    batch = sample(dictionary)

    logits = bf16(**batch["net_input"], masked_tokens=batch["target"].ne(dictionary.pad()),
                  pair_target_mask=batch["pair_targets"].ne(dictionary.pad()))
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


def test_fp16_weights_with_bf16_autocast_are_refused(dictionary):
    model, criterion = model_and_loss(dictionary, autocast_bf16=True)
    with pytest.raises(UserInputError, match="--autocast-bf16 keeps fp32 weights"):
        criterion(model.half(), sample(dictionary))
