"""Tensor names: HuggingFace BERT layout <-> the `span_bert` model's state dict (docs/DESIGN.md).

Every source is first brought to one canonical HF form, the keys `transformers` writes for
`BertForPreTraining` (`bert.embeddings.*`, `bert.encoder.*`, `cls.predictions.*`, LayerNorm
`weight`/`bias`); the SBO head uses the authors' names under `cls.pair_target_predictions.*`.
The canonical form then maps one to one onto `span_bert` keys.
"""

import re

SPAN_BERT_ENCODER = "encoder.bert."  # + HF BertModel key without `bert.`
HF_ENCODER = "bert."
WORD_EMBEDDINGS = SPAN_BERT_ENCODER + "embeddings.word_embeddings.weight"

# Canonical HF suffixes of the two heads (after the head's prefix) -> span_bert keys.
HF_MLM_PREFIX = "cls.predictions."
MLM_KEYS = {
    "transform.dense.weight": "encoder.mlm_head.dense.weight",
    "transform.dense.bias": "encoder.mlm_head.dense.bias",
    "transform.LayerNorm.weight": "encoder.mlm_head.layer_norm.weight",
    "transform.LayerNorm.bias": "encoder.mlm_head.layer_norm.bias",
    "bias": "encoder.mlm_head.bias",
}
HF_SBO_PREFIX = "cls.pair_target_predictions."
SBO_KEYS = {
    "position_embeddings.weight": "encoder.sbo_head.position_embeddings.weight",
    "mlp_layer_norm.linear1.weight": "encoder.sbo_head.mlp.linear1.weight",
    "mlp_layer_norm.linear1.bias": "encoder.sbo_head.mlp.linear1.bias",
    "mlp_layer_norm.layer_norm1.weight": "encoder.sbo_head.mlp.layer_norm1.weight",
    "mlp_layer_norm.layer_norm1.bias": "encoder.sbo_head.mlp.layer_norm1.bias",
    "mlp_layer_norm.linear2.weight": "encoder.sbo_head.mlp.linear2.weight",
    "mlp_layer_norm.linear2.bias": "encoder.sbo_head.mlp.linear2.bias",
    "mlp_layer_norm.layer_norm2.weight": "encoder.sbo_head.mlp.layer_norm2.weight",
    "mlp_layer_norm.layer_norm2.bias": "encoder.sbo_head.mlp.layer_norm2.bias",
    "bias": "encoder.sbo_head.bias",
}
HEADS = {"MLM head": (HF_MLM_PREFIX, MLM_KEYS), "SBO head": (HF_SBO_PREFIX, SBO_KEYS)}

# Output projections tied to the word embeddings: span_bert stores no copy of them.
TIED = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
        "cls.pair_target_predictions.decoder.weight")
# Trained parts of BERT that span_bert has no module for; carried through import and export
# so a round trip keeps them, never trained by fairseq-train.
CARRIED = ("bert.pooler.", "cls.seq_relationship.")
# Buffers, not weights: HF recomputes them.
BUFFERS = ("bert.embeddings.position_ids", "bert.embeddings.token_type_ids")


def canonical_hf_name(key):
    """Any BERT spelling of a key -> the canonical HF name (or the key unchanged if foreign).

    Handles the bare `BertModel` layout (`embeddings.*`), TF-era LayerNorm `gamma`/`beta`,
    and the authors' fairseq-0.6 `decoder.` prefix.
    """
    key = re.sub(r"^decoder\.", "", key)
    key = re.sub(r"\.gamma$", ".weight", key)
    key = re.sub(r"\.beta$", ".bias", key)
    if key.startswith(("embeddings.", "encoder.", "pooler.")):
        key = HF_ENCODER + key
    return key


def canonicalize(state):
    """A BERT state dict in any spelling -> {canonical HF name: tensor}."""
    out = {}
    for key, tensor in state.items():
        name = canonical_hf_name(key)
        if name in out:
            raise ValueError(f"two tensors map to {name!r} (one of them is {key!r})")
        out[name] = tensor
    return out


_HEAD_TO_SPAN_BERT = {prefix + suffix: key
                      for prefix, table in HEADS.values() for suffix, key in table.items()}
_HEAD_TO_HF = {key: name for name, key in _HEAD_TO_SPAN_BERT.items()}


def span_bert_name(hf_name):
    """Canonical HF name -> span_bert key, or None where span_bert has no such tensor."""
    if hf_name in _HEAD_TO_SPAN_BERT:
        return _HEAD_TO_SPAN_BERT[hf_name]
    if hf_name.startswith(HF_ENCODER) and not hf_name.startswith(CARRIED) and hf_name not in BUFFERS:
        return SPAN_BERT_ENCODER + hf_name[len(HF_ENCODER):]
    return None


def hf_name(span_bert_key):
    """span_bert key -> canonical HF name."""
    if span_bert_key in _HEAD_TO_HF:
        return _HEAD_TO_HF[span_bert_key]
    if span_bert_key.startswith(SPAN_BERT_ENCODER):
        return HF_ENCODER + span_bert_key[len(SPAN_BERT_ENCODER):]
    raise ValueError(f"span_bert state dict has a key with no HuggingFace name: {span_bert_key!r}")


def split_hf_state(hf):
    """Canonical HF tensors -> (span_bert tensors, carried HF tensors, tied, ignored names).

    `tied` holds the tied projections found, so the caller can check they equal the embeddings.
    """
    model, carried, tied, ignored = {}, {}, {}, []
    for name, tensor in hf.items():
        key = span_bert_name(name)
        if key is not None:
            model[key] = tensor
        elif name.startswith(CARRIED):
            carried[name] = tensor
        elif name in TIED:
            tied[name] = tensor
        elif name not in BUFFERS:
            ignored.append(name)
    return model, carried, tied, sorted(ignored)


def span_bert_to_hf(model_state):
    """span_bert state dict -> (canonical HF tensors of BertForPreTraining, SBO head tensors)."""
    hf, sbo = {}, {}
    for key, tensor in model_state.items():
        name = hf_name(key)
        (sbo if name.startswith(HF_SBO_PREFIX) else hf)[name] = tensor
    return hf, sbo


def head_keys(head):
    """The span_bert keys of one head ("MLM head" or "SBO head")."""
    return list(HEADS[head][1].values())


# Files of a HuggingFace BERT directory, as read by spanbert-import and written by spanbert-export.
HF_CONFIG = "config.json"
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
HF_VOCAB = "vocab.txt"
HF_TOKENIZER_CONFIG = "tokenizer_config.json"
# The SBO head, which transformers has no class for: the canonical `cls.pair_target_predictions.*`
# tensors in a safetensors file beside model.safetensors, so every transformers class loads the
# directory without unexpected keys and spanbert-import restores the head.
SBO_FILE = "spanbert_sbo_head.safetensors"
