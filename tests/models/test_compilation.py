"""--compile: modules compiled in place (state-dict keys unchanged), or eager with one warning."""

import logging
import os
import shutil
import sysconfig

import pytest
import torch

from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.models import compilation
from spanbert_fairseq.models.span_bert import SpanBertModel, SpanBertModelConfig

TINY = dict(encoder_layers=1, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=2,
            max_pair_targets=15)


class _Task:
    trains_pretraining_heads = True

    def __init__(self, dictionary):
        self.source_dictionary = dictionary


def build(bert_vocab, **flags):
    task = _Task(BertDictionary.load(str(bert_vocab)))
    return SpanBertModel.build_model(SpanBertModelConfig(**TINY, **flags), task)


def compiled_modules(model):
    return {name for name, m in model.named_modules() if getattr(m, "_compiled_call_impl", None) is not None}


def test_compile_is_in_place_and_keeps_the_state_dict_keys(bert_vocab):
    if compilation.why_torch_cannot_compile():
        pytest.skip(f"cannot compile here ({compilation.why_torch_cannot_compile()}); the fallback is tested below")
    eager, compiled = build(bert_vocab), build(bert_vocab, compile=True)
    assert compiled_modules(eager) == set()
    assert compiled_modules(compiled) == {"encoder.bert", "encoder.mlm_head", "encoder.sbo_head"}
    assert list(compiled.state_dict()) == list(eager.state_dict())
    compiled.load_state_dict(eager.state_dict())  # an eager checkpoint loads into a compiled model


def test_platform_that_cannot_compile_falls_back_with_one_warning(bert_vocab, monkeypatch, caplog):
    monkeypatch.setattr(compilation, "why_torch_cannot_compile", lambda: "no C++ compiler here")
    compilation._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger=compilation.__name__):
        models = [build(bert_vocab, compile=True) for _ in range(3)]
    assert all(compiled_modules(m) == set() for m in models)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["--compile: no C++ compiler here; the model runs eagerly"]
    compilation._warn_once.cache_clear()


def test_a_platform_with_a_cpp_compiler_and_python_headers_can_compile():
    # A wrong probe would turn --compile off, with a warning, where it works.
    has_headers = os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
    if not (shutil.which("g++") and has_headers) or torch.cuda.is_available():
        pytest.skip("needs g++, Python.h and no CUDA (which also needs Triton)")
    assert compilation.why_torch_cannot_compile() is None
