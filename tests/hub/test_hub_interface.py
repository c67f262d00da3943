"""The hub interface as a RoBERTa user reaches for it: from_pretrained(dir, file, data), torch.hub,
fill_mask, fill_spans, extract_features (all layers, gradients in train mode), encode/decode pairs."""

import math
import os
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from spanbert_fairseq import SpanBertModel
from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.data.head_rows import head_rows
from spanbert_fairseq.models.span_bert import SpanBertEncoder, SpanBertModelConfig
from spanbert_text.errors import UserInputError

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = dict(encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=2,
            max_pair_targets=15)


def save_checkpoint(path, model, num_updates=0):
    """A checkpoint in the layout fairseq-train writes (cfg as a plain dict)."""
    state = {
        "cfg": {"model": {**OmegaConf.to_container(OmegaConf.structured(model.cfg)), "_name": "spanbert_tiny"}},
        "model": model.state_dict(),
        "optimizer_history": [{"criterion_name": "SpanBertLoss", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {}, "num_updates": num_updates}],
        "extra_state": {"train_iterator": {"epoch": 1}},
    }
    torch.save(state, path)


def random_model(dictionary, seed):
    torch.manual_seed(seed)
    cfg = SpanBertModelConfig(**TINY)
    return SpanBertModel(cfg, SpanBertEncoder(cfg, dictionary))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, bert_vocab):
    """BERT uncased vocab.txt + a random tiny model's checkpoint_last.pt (real words to fill)."""
    directory = tmp_path_factory.mktemp("hub")
    shutil.copy(bert_vocab, directory / "vocab.txt")
    model = random_model(BertDictionary.load(bert_vocab), seed=0)
    save_checkpoint(directory / "checkpoint_last.pt", model)
    return directory, model


@pytest.fixture(scope="module")
def hub(model_dir):
    return SpanBertModel.from_pretrained(model_dir[0], "checkpoint_last.pt")


# ---------------------------------------------------------------- loading, RoBERTa's way


def test_from_pretrained_takes_roberta_arguments_and_reads_a_plain_save_directory(trained_save_dir, tiny_data_dir):
    """fairseq-train's save directory holds checkpoints only: the vocabulary comes from
    data_name_or_path, or else from the data directory the checkpoint records."""
    by_position = SpanBertModel.from_pretrained(str(trained_save_dir), "checkpoint_best.pt", str(tiny_data_dir))
    by_record = SpanBertModel.from_pretrained(trained_save_dir, checkpoint_file="checkpoint_last.pt")
    tokens = by_position.encode("the return statement leaves the function.")
    assert tokens[0] == by_position.dictionary.cls() and tokens[-1] == by_position.dictionary.sep()
    assert torch.equal(tokens, by_record.encode("the return statement leaves the function."))
    assert len(by_record.dictionary) == len(BertDictionary.load(tiny_data_dir / "dict.txt"))
    assert by_position.extract_features(tokens).shape == (1, len(tokens), 128)


def test_vocabulary_lookup_order_and_the_error_when_none_has_it(trained_save_dir, tiny_data_dir, tmp_path):
    moved = shutil.copytree(tiny_data_dir, tmp_path / "moved-data")
    save_dir = shutil.copytree(trained_save_dir, tmp_path / "save")
    os.rename(tiny_data_dir, tiny_data_dir.with_name("gone"))  # the recorded data directory vanishes
    try:
        with pytest.raises(UserInputError) as error:
            SpanBertModel.from_pretrained(save_dir, "checkpoint_last.pt")
        message = str(error.value)
        assert f"{save_dir} (beside the checkpoint)" in message
        assert f"{tiny_data_dir} (the data the checkpoint was trained on)" in message
        assert "from_pretrained(model_dir, checkpoint_file, DATA_DIR)" in message
        assert SpanBertModel.from_pretrained(save_dir, "checkpoint_last.pt", moved).encode("the").numel() == 3
        # fairseq's convention: a data path starting with "." is relative to the model directory.
        shutil.copytree(moved, save_dir / "data")
        assert SpanBertModel.from_pretrained(save_dir, "checkpoint_last.pt", "./data").encode("the").numel() == 3
        # A vocabulary beside the checkpoint comes first.
        for name in ("dict.txt", "vocab.txt"):
            shutil.copy(moved / name, save_dir / name)
        assert SpanBertModel.from_pretrained(save_dir, "checkpoint_last.pt", tmp_path / "nowhere").encode("the") \
            .numel() == 3
    finally:
        os.rename(tiny_data_dir.with_name("gone"), tiny_data_dir)


def test_torch_hub_load_with_roberta_arguments(trained_save_dir, tiny_data_dir):
    hub = torch.hub.load(str(REPO_ROOT), "spanbert", str(trained_save_dir), "checkpoint_last.pt",
                         str(tiny_data_dir), source="local")
    direct = SpanBertModel.from_pretrained(trained_save_dir, "checkpoint_last.pt")
    tokens = hub.encode("span boundary objective")
    assert torch.equal(hub.extract_features(tokens), direct.extract_features(tokens))


def test_default_checkpoint_is_best_then_last_then_imported(model_dir, bert_vocab, tmp_path):
    dictionary = BertDictionary.load(bert_vocab)
    shutil.copy(bert_vocab, tmp_path / "vocab.txt")
    with pytest.raises(UserInputError, match="checkpoint_best.pt, checkpoint_last.pt, model.pt"):
        SpanBertModel.from_pretrained(tmp_path)
    tokens = torch.tensor([[101, 1996, 4937, 102]])  # [CLS] the cat [SEP]

    def loaded_features():
        return SpanBertModel.from_pretrained(tmp_path).extract_features(tokens)

    models = {name: random_model(dictionary, seed).eval()
              for seed, name in enumerate(("model.pt", "checkpoint_last.pt", "checkpoint_best.pt"))}
    for name, model in models.items():  # imported, then last, then best: each must take over
        save_checkpoint(tmp_path / name, model)
        with torch.no_grad():
            assert torch.equal(loaded_features(), model.extract_features(tokens)), name


def test_overrides_change_the_model_config_and_unknown_ones_are_refused(model_dir):
    assert SpanBertModel.from_pretrained(model_dir[0], "checkpoint_last.pt", dropout=0.3).model.cfg.dropout == 0.3
    with pytest.raises(UserInputError, match="'no_such_option' is not a model option"):
        SpanBertModel.from_pretrained(model_dir[0], "checkpoint_last.pt", no_such_option=1)


def test_clear_errors_for_missing_files(model_dir, tmp_path):
    with pytest.raises(UserInputError, match="checkpoint not found"):
        SpanBertModel.from_pretrained(tmp_path, checkpoint_file="nope.pt")
    shutil.copy(model_dir[0] / "checkpoint_last.pt", tmp_path / "checkpoint_last.pt")
    with pytest.raises(UserInputError, match="no vocabulary .* for .*checkpoint_last.pt"):
        SpanBertModel.from_pretrained(tmp_path, checkpoint_file="checkpoint_last.pt")
    # A dict.txt alone gives the ids but no way to split text into pieces.
    BertDictionary.load(model_dir[0] / "vocab.txt").save(tmp_path / "dict.txt")
    with pytest.raises(UserInputError, match="no tokenizer found"):
        SpanBertModel.from_pretrained(tmp_path, checkpoint_file="checkpoint_last.pt")


def test_a_tokenizer_json_that_pads_does_not_pad_encode(model_dir, tmp_path):
    for name in ("vocab.txt", "checkpoint_last.pt"):
        shutil.copy(model_dir[0] / name, tmp_path / name)
    hub = SpanBertModel.from_pretrained(tmp_path)
    unpadded = hub.encode("the cat sat")
    # Save the same WordPiece tokenizer the way HF checkpoints often ship it: padding to 32.
    hub.text_tokenizer.tokenizer.enable_padding(length=32, pad_token="[PAD]")
    hub.text_tokenizer.tokenizer.save(str(tmp_path / "tokenizer.json"))
    assert torch.equal(SpanBertModel.from_pretrained(tmp_path).encode("the cat sat"), unpadded)


# ---------------------------------------------------------------- text in, text out


def test_encode_a_pair_as_bert_and_decode_it_back(hub):
    tokens = hub.encode("How are you?", "Fine, thanks.")
    pieces = [hub.dictionary[int(t)] for t in tokens]
    assert pieces == ["[CLS]", "how", "are", "you", "?", "[SEP]", "fine", ",", "thanks", ".", "[SEP]"]
    assert hub.token_types(tokens[None]).tolist() == [[0] * 6 + [1] * 5]
    assert hub.decode(tokens) == ["how are you?", "fine, thanks."]


@pytest.mark.parametrize("text", [
    "hello world, this is spanbert.",
    "don't stop (now): it's 5% off!",
    "the [brackets] and {braces} stay; spacing too.",
])
def test_decode_puts_no_space_before_punctuation_the_text_did_not_have(hub, text):
    assert hub.decode(hub.encode(text)) == text


def test_fill_mask_returns_robertas_shape(hub, model_dir):
    filled = hub.fill_mask("the cat sat on the [MASK].", topk=4)
    assert len(filled) == 4
    probabilities = [p for _, p, _ in filled]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6
    for sentence, _, token in filled:
        assert sentence.startswith("the cat sat on the") and sentence.endswith(".")
        assert token in sentence
    # The best guess is the model's own argmax at the mask, with its softmax probability.
    model = model_dir[1].eval()
    tokens = hub.encode("the cat sat on the [MASK].")[None]
    pad = hub.dictionary.pad()
    rows = head_rows(tokens, tokens.masked_fill(tokens.ne(hub.dictionary.mask()), pad), pad)
    with torch.no_grad():
        logits, _ = model(tokens, **rows.net_input())
    best = int(logits[0].argmax())
    assert filled[0][2] == hub.decode(torch.tensor([best]))
    assert math.isclose(filled[0][1], float(logits[0].softmax(-1)[best]), rel_tol=1e-5)
    with pytest.raises(ValueError, match="exactly one \\[MASK\\]"):
        hub.fill_mask("[MASK] and [MASK]")


def test_fill_spans_predicts_every_masked_token_with_both_heads_and_scores(hub):
    spans = hub.fill_spans("the [MASK] [MASK] sat on the <mask> today", topk=3)
    assert len(spans) == 2
    assert [len(s["mlm_topk"]) for s in spans] == [2, 1] == [len(s["sbo_topk"]) for s in spans]
    assert all(len(row) == 3 for s in spans for row in s["mlm_topk"] + s["sbo_topk"])
    for span in spans:
        for head in ("mlm", "sbo"):
            probs = span[f"{head}_probs"]
            assert all(row == sorted(row, reverse=True) for row in probs)
            assert math.isclose(span[f"{head}_score"], math.prod(row[0] for row in probs), rel_tol=1e-6)
            assert span[head] == hub.text_tokenizer.detokenize([row[0] for row in span[f"{head}_topk"]])
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        hub.fill_spans("nothing to fill")


# ---------------------------------------------------------------- features


def test_extract_features_all_layers_and_gradients_only_in_train_mode(model_dir):
    hub = SpanBertModel.from_pretrained(model_dir[0], "checkpoint_last.pt")
    tokens = hub.encode("span boundary objective")
    last = hub.extract_features(tokens)
    layers = hub.extract_features(tokens, return_all_hiddens=True)
    assert len(layers) == TINY["encoder_layers"] + 1 and all(t.shape == last.shape for t in layers)
    assert torch.equal(layers[-1], last)
    with torch.no_grad():
        assert torch.allclose(last, model_dir[1].eval().extract_features(tokens[None]))
    assert not hub.training and not last.requires_grad

    hub.train()  # fine-tuning through the hub: dropout on, gradients flow
    features = hub.extract_features(tokens)
    assert features.requires_grad
    features.sum().backward()
    assert hub.model.encoder.bert.embeddings.word_embeddings.weight.grad is not None
    hub.eval()
    assert not hub.extract_features(tokens).requires_grad


def test_register_classification_head_and_predict_as_robertas(trained_save_dir):
    hub = SpanBertModel.from_pretrained(trained_save_dir, "checkpoint_best.pt")
    hub.register_classification_head("mnli", num_classes=3)
    hub.register_classification_head("squad", kind="span")
    tokens = hub.encode("The return statement leaves the function.", "It returns.")
    log_probs = hub.predict("mnli", tokens)
    assert log_probs.shape == (1, 3)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(1))
    torch.testing.assert_close(hub.predict("mnli", tokens), log_probs)  # eval mode: the new head has no dropout
    logits = hub.predict("mnli", tokens, return_logits=True)
    torch.testing.assert_close(logits.log_softmax(-1), log_probs)
    span = hub.predict("squad", tokens)  # start and end, each a distribution over the positions
    assert span.shape == (1, len(tokens), 2)
    torch.testing.assert_close(span.exp().sum(1), torch.ones(1, 2))
