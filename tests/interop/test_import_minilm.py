"""Import of a real checkpoint no one here wrote: all-MiniLM-L6-v2 gives BERT's outputs exactly."""

import torch

from spanbert_fairseq import SpanBertModel

SENTENCES = [
    "SpanBERT masks contiguous spans of whole words.",
    "A short one.",
    "The span boundary objective predicts every token of a masked span from the two tokens "
    "just outside it, plus the token's position inside the span.",
    "Unusual words: photosynthesis, antidisestablishmentarianism, and naïve café owners!",
]


def _bert_model(minilm_dir):
    import transformers

    return transformers.BertModel.from_pretrained(str(minilm_dir)).eval()


def _padded(token_lists, pad):
    batch = torch.full((len(token_lists), max(map(len, token_lists))), pad, dtype=torch.long)
    for row, tokens in zip(batch, token_lists):
        row[: len(tokens)] = tokens
    return batch


def test_extract_features_equal_transformers_bert(imported_minilm, minilm_dir):
    directory, _ = imported_minilm
    hub = SpanBertModel.from_pretrained(directory, checkpoint_file="model.pt")
    bert = _bert_model(minilm_dir)
    tokens = [hub.encode(s) for s in SENTENCES]
    batch = _padded(tokens, hub.dictionary.pad())
    is_token = batch.ne(hub.dictionary.pad())
    assert not is_token.all(), "the batch must be padded"

    with torch.no_grad():
        expected = bert(input_ids=batch, attention_mask=is_token.long()).last_hidden_state
    ours = hub.extract_features(batch)
    batched_diff = (ours - expected)[is_token].abs().max().item()
    assert batched_diff < 1e-5, batched_diff

    for single in tokens:  # unpadded, one at a time
        with torch.no_grad():
            expected = bert(input_ids=single[None]).last_hidden_state
        diff = (hub.extract_features(single) - expected).abs().max().item()
        assert diff < 1e-5, diff


def test_sentence_pairs_and_all_layers_equal_transformers_bert(imported_minilm, minilm_dir):
    """encode(a, b) is BERT's pair, with its token types; return_all_hiddens gives HF's hidden_states."""
    directory, _ = imported_minilm
    hub = SpanBertModel.from_pretrained(directory, checkpoint_file="model.pt")
    bert = _bert_model(minilm_dir)
    tokens = hub.encode(SENTENCES[0], SENTENCES[1])
    first_sep = int(tokens.eq(hub.dictionary.sep()).nonzero()[0])
    token_type_ids = (torch.arange(len(tokens)) > first_sep).long()[None]
    with torch.no_grad():
        expected = bert(input_ids=tokens[None], token_type_ids=token_type_ids, output_hidden_states=True)
    ours = hub.extract_features(tokens, return_all_hiddens=True)
    assert len(ours) == len(expected.hidden_states)
    for layer, (mine, theirs) in enumerate(zip(ours, expected.hidden_states)):
        assert (mine - theirs).abs().max().item() < 1e-5, layer
    # Without the token types the second sentence's states differ: the pair really uses them.
    with torch.no_grad():
        single_segment = bert(input_ids=tokens[None]).last_hidden_state
    assert (single_segment - ours[-1]).abs().max().item() > 1e-3


def test_hub_tokenizer_gives_the_checkpoint_tokenizers_ids(imported_minilm, minilm_dir):
    from tokenizers import Tokenizer

    directory, _ = imported_minilm
    hub = SpanBertModel.from_pretrained(directory, checkpoint_file="model.pt")
    source = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    source.no_padding()
    for sentence in SENTENCES:
        assert hub.encode(sentence).tolist() == source.encode(sentence).ids


def test_report_names_the_fresh_heads_and_the_carried_pooler(imported_minilm):
    directory, report = imported_minilm
    assert report.loaded_heads == [] and report.fresh_heads == ["MLM head", "SBO head"]
    assert report.carried == ["bert.pooler.dense.bias", "bert.pooler.dense.weight"]
    assert "initialised fresh" in report.notes() and "MLM head, SBO head" in report.notes()
    assert report.model_args["encoder_layers"] == 6 and report.model_args["encoder_embed_dim"] == 384
    assert (directory / "dict.txt").read_text().splitlines()[101] == "[CLS] 1"  # BERT ids kept
    flags = (directory / "train_args.txt").read_text().split()
    assert flags[:2] == ["--arch", "spanbert_base"] and "--encoder-layers" in flags


def test_the_checkpoint_lists_the_heads_initialised_fresh(imported_minilm):
    from spanbert_fairseq.checkpoint_io import safe_load
    from spanbert_fairseq.interop.span_bert_checkpoint import FRESH_HEADS_KEY

    directory, report = imported_minilm
    assert report.fresh_heads == ["MLM head", "SBO head"]  # a sentence encoder: no pretraining heads
    assert safe_load(directory / "model.pt")[FRESH_HEADS_KEY] == report.fresh_heads
