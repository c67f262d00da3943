"""Fixtures of tests/models: a batch from the task's own masker and collater, and a tiny model with
its criterion."""

from argparse import Namespace

import pytest
import torch

from spanbert_fairseq.criterions.span_bert import SpanBertCriterionConfig, SpanBertLoss
from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.data.span_masked_dataset import collate_span_batch
from spanbert_fairseq.data.span_masking import MaskingParams, SpanMasker


@pytest.fixture(scope="session")
def bert_dictionary(bert_vocab):
    return BertDictionary.load(str(bert_vocab))


@pytest.fixture(scope="session")
def collated_batch(bert_dictionary):
    """collated_batch(lengths, seed) -> random blocks of those lengths, masked by the task's masker
    (SpanBERT's defaults) and collated by its collater."""
    d = bert_dictionary
    masker = SpanMasker(MaskingParams(random_token_source="uniform"), d)

    def build(lengths=(60, 41, 17), seed=0):
        g = torch.Generator().manual_seed(seed)
        items = []
        for index, n in enumerate(lengths):
            block = torch.randint(1000, len(d), (n,), generator=g)
            items.append({"id": index, **masker.mask_block(block, seed, 1, index)._asdict()})
        return collate_span_batch(items, d.pad(), d.cls(), d.sep(), masker.max_pair_targets)

    return build


@pytest.fixture(scope="session")
def tiny_model_and_criterion(bert_dictionary):
    """tiny_model_and_criterion(**model_flags) -> (2-layer span_bert in train mode, its criterion),
    the same initial weights for the same flags."""
    from spanbert_fairseq.models.span_bert import SpanBertEncoder, SpanBertModel, SpanBertModelConfig

    d = bert_dictionary

    def build(**flags):
        cfg = SpanBertModelConfig(encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
                                  encoder_attention_heads=2, max_pair_targets=15, **flags)
        torch.manual_seed(0)
        model = SpanBertModel(cfg, SpanBertEncoder(cfg, d)).train()
        task = Namespace(source_dictionary=d, target_dictionary=d)
        return model, SpanBertLoss(SpanBertCriterionConfig(), task)

    return build
