"""HuggingFace BertConfig fields <-> the span_bert model args that describe the architecture.

span_bert is BERT's post-LayerNorm encoder with erf GeLU and absolute positions (docs/training.md, "Model");
a config describing anything else is refused here, by name, before any tensor is touched.
"""

from .errors import InteropError

# HF BertConfig field -> span_bert model arg (docs/DESIGN.md), and the HF default if the field
# may be absent (the released SpanBERT config.json predates several fields).
HF_TO_MODEL_ARGS = {
    "num_hidden_layers": ("encoder_layers", None),
    "hidden_size": ("encoder_embed_dim", None),
    "intermediate_size": ("encoder_ffn_embed_dim", None),
    "num_attention_heads": ("encoder_attention_heads", None),
    "max_position_embeddings": ("max_positions", 512),
    "type_vocab_size": ("type_vocab_size", 2),
    "layer_norm_eps": ("layer_norm_eps", 1e-12),
    "hidden_dropout_prob": ("dropout", 0.1),
    "attention_probs_dropout_prob": ("attention_dropout", 0.1),
}
# Config fields whose other values describe a model span_bert is not: field -> accepted values.
REQUIRED_VALUES = {
    "model_type": ("bert", None),  # the released SpanBERT config.json has no model_type
    "hidden_act": ("gelu", None),  # erf GeLU, HF's default; gelu_new or relu change every output
    "position_embedding_type": ("absolute", None),
    "is_decoder": (False, None),
    "add_cross_attention": (False, None),
}


def model_args_from_hf_config(config, where):
    """HF config dict -> {span_bert model arg: value}; InteropError names what does not fit."""
    for name, accepted in REQUIRED_VALUES.items():
        value = config.get(name)
        if value not in accepted:
            raise InteropError(
                f"{where}: {name}={value!r}, but span_bert is BERT's encoder "
                f"({name} must be {' or '.join(repr(a) for a in accepted if a is not None)})"
            )
    missing = [f for f, (_, default) in HF_TO_MODEL_ARGS.items() if default is None and f not in config]
    if missing:
        raise InteropError(f"{where}: the config lacks {', '.join(missing)}")
    args = {arg: config.get(field, default) for field, (arg, default) in HF_TO_MODEL_ARGS.items()}
    if args["encoder_embed_dim"] % args["encoder_attention_heads"]:
        raise InteropError(
            f"{where}: hidden_size {args['encoder_embed_dim']} is not a multiple of "
            f"num_attention_heads {args['encoder_attention_heads']}"
        )
    return args


def hf_config_from_model_args(model_args, vocab_size, pad_token_id):
    """span_bert model args -> HF BertConfig fields (what config.json of an export holds)."""
    config = {
        "architectures": ["BertForPreTraining"],
        "model_type": "bert",
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
        "vocab_size": vocab_size,
        "pad_token_id": pad_token_id,
        "initializer_range": 0.02,
        "tie_word_embeddings": True,
    }
    for field, (arg, _) in HF_TO_MODEL_ARGS.items():
        config[field] = model_args[arg]
    return config
