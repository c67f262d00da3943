"""spanbert-export of fine-tuned checkpoints: a sentence head as BertForSequenceClassification, a span
head as BertForQuestionAnswering, each giving the plugin's logits (eval mode, float tolerance)."""

import json

import pytest
import torch

from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.interop import span_bert_checkpoint as ckpt
from spanbert_fairseq.interop.errors import InteropError
from spanbert_fairseq.interop.export_checkpoint import export_checkpoint
from spanbert_fairseq.models.bert_encoder import bert_token_types
from spanbert_fairseq.models.span_bert import SpanBertModel

PAIRS = [("The cat sat on the mat.", "A cat is sitting."), ("It rained all day in the city.", "It was dry.")]


def fine_tuned_checkpoint(imported_minilm, tmp_path, heads):
    """MiniLM's encoder with fresh `heads` ({name: (kind, num_classes)}), saved as fairseq-train would."""
    directory, _ = imported_minilm
    state = ckpt.load_checkpoint(directory / "model.pt")
    cfg, body = state[0], {k: v for k, v in state[1].items() if k.startswith("encoder.bert.")}
    dictionary = BertDictionary.load(str(directory / "dict.txt"))
    torch.manual_seed(0)
    model = SpanBertModel.for_dictionary(cfg.model, dictionary, pretraining_heads=False)
    for name, (kind, num_classes) in heads.items():
        model.register_classification_head(name, num_classes, kind=kind)
        with torch.no_grad():  # non-zero biases, so a lost bias shows
            model.classification_heads[name].out_proj.bias.normal_()
    model.load_state_dict({**body, **{k: v for k, v in model.state_dict().items() if k.startswith("classification")}})
    path = tmp_path / "checkpoint_best.pt"
    ckpt.save_checkpoint(path, cfg, model.state_dict(), {})
    return path, model.eval(), dictionary


def pair_batch(dictionary):
    from spanbert_text.tokenization import wordpiece_tokenizer

    tokenizer = wordpiece_tokenizer(dictionary, lowercase=True)
    rows = [tokenizer.encode(a, b).ids for a, b in PAIRS]
    batch = torch.full((len(rows), max(map(len, rows))), dictionary.pad())
    for row, ids in zip(batch, rows):
        row[: len(ids)] = torch.tensor(ids)
    return batch


def hf_inputs(batch, dictionary):
    return dict(input_ids=batch, attention_mask=batch.ne(dictionary.pad()).long(),
                token_type_ids=bert_token_types(batch, dictionary.sep(), dictionary.pad()))


@pytest.mark.parametrize("kind", ["sentence", "span"])
def test_exported_head_gives_the_plugins_logits(imported_minilm, tmp_path, kind):
    transformers = pytest.importorskip("transformers")
    head = {"task": (kind, 3 if kind == "sentence" else None)}
    path, model, dictionary = fine_tuned_checkpoint(imported_minilm, tmp_path, head)
    report = export_checkpoint(path, tmp_path / "hf", vocab=imported_minilm[0] / "dict.txt")
    cls_name = {"sentence": "BertForSequenceClassification", "span": "BertForQuestionAnswering"}[kind]
    assert report.architecture == cls_name and f"as {cls_name}" in report.summary()
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == [cls_name]
    hf, info = getattr(transformers, cls_name).from_pretrained(str(tmp_path / "hf"), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    batch = pair_batch(dictionary)
    assert int(bert_token_types(batch, dictionary.sep(), dictionary.pad()).sum()) > 0  # a real pair
    with torch.no_grad():
        ours, _ = model(batch, classification_head_name="task")
        theirs = hf.eval()(**hf_inputs(batch, dictionary))
    if kind == "sentence":
        assert ours.shape == (2, 3)
        torch.testing.assert_close(theirs.logits, ours, atol=1e-5, rtol=1e-4)
    else:
        real = batch.ne(dictionary.pad())
        torch.testing.assert_close(theirs.start_logits[real], ours[..., 0][real], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(theirs.end_logits[real], ours[..., 1][real], atol=1e-5, rtol=1e-4)


def test_several_heads_need_head(imported_minilm, tmp_path):
    path, _, _ = fine_tuned_checkpoint(imported_minilm, tmp_path, {"rte": ("sentence", 2), "squad": ("span", None)})
    with pytest.raises(InteropError, match="holds heads rte, squad: name one with --head"):
        export_checkpoint(path, tmp_path / "hf", vocab=imported_minilm[0] / "dict.txt")
    report = export_checkpoint(path, tmp_path / "hf", vocab=imported_minilm[0] / "dict.txt", head="squad")
    assert report.architecture == "BertForQuestionAnswering"
