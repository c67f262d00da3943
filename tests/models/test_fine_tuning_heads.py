"""The fine-tuning head registry (docs/DESIGN.md, "Heads"): RoBERTa's register_classification_head,
the features_only forward with BERT's token types, and upgrade_state_dict_named's head rules."""

import logging

import pytest
import torch

from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.models.bert_encoder import bert_token_types
from spanbert_fairseq.models.span_bert import SpanBertModel, SpanBertModelConfig, has_pretraining_heads

TINY = dict(encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=2,
            max_pair_targets=15)


@pytest.fixture(scope="module")
def dictionary(bert_vocab):
    return BertDictionary.load(str(bert_vocab))


class _Task:
    def __init__(self, dictionary, pretraining):
        self.source_dictionary = dictionary
        if pretraining:
            self.trains_pretraining_heads = True


def build(dictionary, pretraining=False, seed=0):
    torch.manual_seed(seed)
    return SpanBertModel.build_model(SpanBertModelConfig(**TINY), _Task(dictionary, pretraining))


def pair_batch(dictionary):
    """Row 0: [CLS] a a a [SEP] b b [SEP]; row 1: [CLS] a a [SEP] pad pad pad pad."""
    cls, sep, pad = dictionary.cls(), dictionary.sep(), dictionary.pad()
    return torch.tensor([[cls, 2000, 2001, 2002, sep, 2003, 2004, sep],
                         [cls, 2005, 2006, sep, pad, pad, pad, pad]])


def test_token_types_are_berts(dictionary):
    types = bert_token_types(pair_batch(dictionary), dictionary.sep(), dictionary.pad())
    assert types.tolist() == [[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0]]


def test_pretraining_heads_only_for_the_pretraining_task(dictionary):
    fine_tuning, pretraining = build(dictionary), build(dictionary, pretraining=True)
    assert not has_pretraining_heads(fine_tuning.state_dict())
    assert fine_tuning.encoder.mlm_head is None and fine_tuning.encoder.sbo_head is None
    assert has_pretraining_heads(pretraining.state_dict())
    body = {k for k in pretraining.state_dict() if k.startswith("encoder.bert.")}
    assert body == fine_tuning.state_dict().keys()


def test_sentence_and_span_heads_keys_and_outputs(dictionary):
    model = build(dictionary).eval()
    model.register_classification_head("mnli", num_classes=3)
    model.register_classification_head("squad", kind="span")
    assert {k for k in model.state_dict() if k.startswith("classification_heads.")} == {
        "classification_heads.mnli.dense.weight", "classification_heads.mnli.dense.bias",
        "classification_heads.mnli.out_proj.weight", "classification_heads.mnli.out_proj.bias",
        "classification_heads.squad.out_proj.weight", "classification_heads.squad.out_proj.bias",
    }
    tokens = pair_batch(dictionary)
    with torch.no_grad():
        logits, extra = model(tokens, features_only=True, classification_head_name="mnli")
        span_logits, _ = model(tokens, classification_head_name="squad")
        features, _ = model(tokens, features_only=True)
        token_types = bert_token_types(tokens, dictionary.sep(), dictionary.pad())
        reference = model.extract_features(tokens, token_types=token_types)
    assert logits.shape == (2, 3) and span_logits.shape == (2, 8, 2) and extra == {"inner_states": None}
    real = tokens.ne(dictionary.pad())
    torch.testing.assert_close(features[real], reference[real])
    head = model.classification_heads["mnli"]
    torch.testing.assert_close(logits, head.out_proj(torch.tanh(head.dense(features[:, 0]))))
    torch.testing.assert_close(span_logits, model.classification_heads["squad"].out_proj(features))


def test_the_second_sentence_has_token_type_one(dictionary):
    model = build(dictionary).eval()
    with torch.no_grad():
        model.encoder.bert.embeddings.token_type_embeddings.weight[1].normal_()
        tokens = pair_batch(dictionary)[:1]
        pair, _ = model(tokens, features_only=True)
        all_zero = model.extract_features(tokens)
    assert not torch.allclose(pair, all_zero)


def test_padding_is_masked_without_padded_in_the_batch(dictionary):
    model = build(dictionary).eval()
    model.register_classification_head("c", num_classes=2)
    tokens = pair_batch(dictionary)
    with torch.no_grad():
        batched, _ = model(tokens, classification_head_name="c")
        alone, _ = model(tokens[1:, :4], classification_head_name="c")
    torch.testing.assert_close(batched[1:], alone)


def test_a_span_head_has_two_outputs(dictionary):
    with pytest.raises(ValueError, match="span head has 2 outputs"):
        build(dictionary).register_classification_head("qa", 3, kind="span")


def test_pretraining_checkpoint_into_a_fine_tuning_model(dictionary, caplog):
    pretrained = build(dictionary, pretraining=True, seed=1).state_dict()
    model = build(dictionary, seed=2)
    model.register_classification_head("sentence_classification_head", num_classes=2)
    fresh_head = {k: v.clone() for k, v in model.classification_heads.state_dict().items()}
    with caplog.at_level(logging.INFO, logger="spanbert_fairseq.models.span_bert"):
        model.load_state_dict(dict(pretrained), strict=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "spanbert_fairseq.models.span_bert"]
    assert len(lines) == 1
    assert "pretraining heads (encoder.mlm_head, encoder.sbo_head: 15 tensors) left out" in lines[0]
    assert "head 'sentence_classification_head' initialised fresh" in lines[0]
    state = model.state_dict()
    assert torch.equal(state[WORD := "encoder.bert.embeddings.word_embeddings.weight"], pretrained[WORD])
    for key, value in fresh_head.items():
        assert torch.equal(state[f"classification_heads.{key}"], value)


def test_unknown_and_ill_sized_checkpoint_heads_are_dropped(dictionary, caplog):
    source = build(dictionary, seed=1)
    source.register_classification_head("other", num_classes=4)
    source.register_classification_head("task", num_classes=3)
    model = build(dictionary, seed=2)
    model.register_classification_head("task", num_classes=2)
    with caplog.at_level(logging.INFO, logger="spanbert_fairseq.models.span_bert"):
        model.load_state_dict(source.state_dict(), strict=True)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "spanbert_fairseq.models.span_bert"]
    assert "checkpoint head 'other' dropped (not in this model)" in line
    assert "checkpoint head 'task' dropped (sizes ('sentence', 3, 32) differ" in line
    assert "head 'task' initialised fresh" in line
    assert list(model.classification_heads) == ["task"]


def test_a_fine_tuned_state_dict_registers_its_heads(dictionary):
    source = build(dictionary, seed=1)
    source.register_classification_head("rte", num_classes=2, inner_dim=16)
    source.register_classification_head("squad", kind="span")
    model = build(dictionary, seed=2)
    model.register_checkpoint_heads(source.state_dict())
    model.load_state_dict(source.state_dict(), strict=True)
    assert model.classification_heads["rte"].dense.out_features == 16
    assert model.classification_heads["squad"].kind == "span"
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
