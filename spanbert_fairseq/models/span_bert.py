"""The `span_bert` model: BERT's encoder with an MLM head and a span boundary objective head.

State-dict keys (docs/DESIGN.md): `encoder.bert.*` are HuggingFace `BertModel`'s keys (no pooler),
`encoder.mlm_head.*` BERT's `cls.predictions`, `encoder.sbo_head.*` the authors'
`cls.pair_target_predictions`. Both heads' output projections are the word embeddings.
Fine-tuning heads (`classification_heads.NAME.*`) are registered by name, as RoBERTa's.
"""

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq.dataclass import FairseqDataclass
from fairseq.models import (
    FairseqEncoder,
    FairseqEncoderModel,
    register_model,
    register_model_architecture,
)
from omegaconf import II
from torch import nn

from spanbert_text.errors import UserInputError

from .bert_encoder import BertBody, bert_token_types, init_bert_weights
from .compilation import compile_in_place
from .heads import (
    MlmHead,
    SboHead,
    build_fine_tuning_head,
    checkpoint_head_sizes,
    head_sizes,
    project_to_vocabulary,
)

logger = logging.getLogger(__name__)

# The sizes each --arch (hydra: model._name) stands for. `span_bert` itself is spanbert_base.
ARCHITECTURE_SIZES = {
    "spanbert_base": dict(
        encoder_layers=12, encoder_embed_dim=768, encoder_ffn_embed_dim=3072, encoder_attention_heads=12
    ),
    "spanbert_large": dict(
        encoder_layers=24, encoder_embed_dim=1024, encoder_ffn_embed_dim=4096, encoder_attention_heads=16
    ),
    "spanbert_tiny": dict(  # tests and the CPU demo
        encoder_layers=2, encoder_embed_dim=128, encoder_ffn_embed_dim=512, encoder_attention_heads=2
    ),
}
DEFAULT_ARCHITECTURE = "spanbert_base"
WORD_EMBEDDINGS_KEY = "encoder.bert.embeddings.word_embeddings.weight"
PRETRAINING_HEADS = ("encoder.mlm_head.", "encoder.sbo_head.")


@dataclass
class SpanBertModelConfig(FairseqDataclass):
    # The sizes default to None, "as the architecture says": fairseq's hydra front end fills every
    # field with its dataclass default before the --arch function runs, so a concrete default here
    # would hide the architecture's size (model._name: spanbert_large built base).
    encoder_layers: Optional[int] = field(default=None, metadata={"help": "number of Transformer layers"})
    encoder_embed_dim: Optional[int] = field(default=None, metadata={"help": "hidden size"})
    encoder_ffn_embed_dim: Optional[int] = field(default=None, metadata={"help": "feed-forward inner size"})
    encoder_attention_heads: Optional[int] = field(default=None, metadata={"help": "attention heads"})
    max_positions: int = field(default=512, metadata={"help": "learned absolute positions"})
    type_vocab_size: int = field(
        default=2, metadata={"help": "token-type rows (BERT's 2; SpanBERT only uses row 0)"}
    )
    layer_norm_eps: float = field(default=1e-12, metadata={"help": "LayerNorm epsilon (BERT's)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on embeddings and sublayer outputs"})
    attention_dropout: float = field(default=0.1, metadata={"help": "dropout on attention weights"})
    sbo_position_dim: int = field(
        default=200, metadata={"help": "size of the SBO head's relative-position embedding"}
    )
    # The task's --max-pair-targets: the batches' pair targets and the SBO position table agree.
    # None under a task without the flag (sentence_prediction), which builds no SBO head.
    max_pair_targets: Optional[int] = II("oc.select:task.max_pair_targets,null")
    compile: bool = field(
        default=False,
        metadata={"help": "torch.compile the encoder body and heads (in place: same state-dict keys); "
                  "eager with one warning where this platform cannot compile"},
    )
    autocast_bf16: bool = field(
        default=False,
        metadata={"help": "bf16 mixed precision: the forward under torch.autocast(bfloat16), fp32 weights "
                  "and loss (fairseq 0.12's --bf16 needs a TPU); use without --fp16"},
    )
    checkpoint_activations: bool = field(
        default=False,
        metadata={"help": "recompute each encoder layer's activations in the backward instead of keeping "
                  "them (torch.utils.checkpoint): less memory, about one more forward of compute"},
    )
    # fairseq's precision flags, seen here so that build_model can refuse --autocast-bf16 with them.
    fp16: bool = II("common.fp16")
    memory_efficient_fp16: bool = II("common.memory_efficient_fp16")


class VocabularyMismatchError(UserInputError):
    """A span_bert state dict trained with another vocabulary size than the dictionary at hand."""


def check_vocabulary_size(state_dict, dictionary_size, checkpoint="the checkpoint", dictionary="the dictionary"):
    """Name both files when a state dict was trained with another vocabulary size.

    Loading it anyway fails deep inside torch with a shape mismatch of every vocabulary-sized
    tensor; this says which two files disagree and how to make them agree.
    """
    embeddings = state_dict.get(WORD_EMBEDDINGS_KEY)
    if embeddings is None or embeddings.size(0) == dictionary_size:
        return
    raise VocabularyMismatchError(
        f"vocabulary mismatch: {checkpoint} was trained with {embeddings.size(0)} vocabulary "
        f"entries but {dictionary} has {dictionary_size}. Binarize the data with the "
        f"checkpoint's own vocabulary (spanbert-import writes vocab.txt and dict.txt next to "
        f"the checkpoint: spanbert-preprocess --vocab <that vocab.txt>)"
    )


def check_precision_flags(cfg):
    """--autocast-bf16 keeps fp32 weights; fairseq's --fp16 would halve them after the model is built.

    Checked here, before training starts: found in the first forward, the error would come after
    fairseq had written a crash.pt.
    """
    # --memory-efficient-fp16 sets fp16 too: name the one the user typed.
    half = [f"--{name.replace('_', '-')}" for name in ("memory_efficient_fp16", "fp16")
            if getattr(cfg, name, False) is True]
    if getattr(cfg, "autocast_bf16", False) and half:
        raise UserInputError(f"--autocast-bf16 trains fp32 weights under a bf16 autocast and {half[0]} makes "
                             f"them fp16: use one of the two (drop {half[0]} or --autocast-bf16)")


def fill_architecture(cfg, arch):
    """Set every size the config leaves unset (None) to architecture `arch`'s."""
    for name, value in ARCHITECTURE_SIZES[arch].items():
        if getattr(cfg, name, None) is None:
            setattr(cfg, name, value)


def has_pretraining_heads(state_dict):
    """Whether a span_bert state dict holds the MLM / SBO heads (a pretraining checkpoint)."""
    return any(key.startswith(PRETRAINING_HEADS) for key in state_dict)


class SpanBertEncoder(FairseqEncoder):
    """Encoder body plus, for pretraining, both heads; the heads run only on the rows the loss needs."""

    def __init__(self, cfg, dictionary, pretraining_heads=True):
        super().__init__(dictionary)
        self.cfg = cfg
        dim, eps = cfg.encoder_embed_dim, cfg.layer_norm_eps
        self.bert = BertBody(
            vocab_size=len(dictionary),
            padding_idx=dictionary.pad(),
            num_layers=cfg.encoder_layers,
            dim=dim,
            ffn_dim=cfg.encoder_ffn_embed_dim,
            num_heads=cfg.encoder_attention_heads,
            max_positions=cfg.max_positions,
            type_vocab_size=cfg.type_vocab_size,
            eps=eps,
            dropout=cfg.dropout,
            attention_dropout=cfg.attention_dropout,
            checkpoint_activations=getattr(cfg, "checkpoint_activations", False),
        )
        self.mlm_head = self.sbo_head = None
        if pretraining_heads:
            self.mlm_head = MlmHead(dim, len(dictionary), eps)
            self.sbo_head = SboHead(dim, len(dictionary), cfg.max_pair_targets, cfg.sbo_position_dim, eps)
        self.apply(init_bert_weights)

    @property
    def embed_weight(self):  # V x C: the tied output projection of both heads
        return self.bert.embeddings.word_embeddings.weight

    def extract_features(self, src_tokens, return_all_hiddens=False, token_types=None):
        """B x T ids -> B x T x C last-layer states; with return_all_hiddens, the list of the
        embedding output and every layer's output (layers + 1 tensors, B x T x C each).
        token_types: B x T segment ids for BERT's sentence pairs (default: all 0)."""
        states = [] if return_all_hiddens else None
        last = self.bert(src_tokens, self.bert.attention_mask(src_tokens), token_types=token_types,
                         hidden_states=states)
        return states if return_all_hiddens else last

    def forward(self, src_tokens, src_lengths=None, padded=True, positions=None, mlm_rows=None,
                sbo_rows=None, **unused):
        """Logits for the MLM and SBO targets, from the batch's head rows (data/head_rows.py).

        src_tokens: B x T.  padded: whether some row holds padding (True builds the attention mask).
        positions: B x R, the positions at which the last layer runs (None: all, R = T).
        mlm_rows: M rows of the flattened B*R last-layer output.  sbo_rows: S x 3, the rows of each
        SBO target's left and right boundary and its index within the span.
        Returns (mlm_logits M x V, sbo_logits S x V); an output is None when its rows are None.
        Every index was computed on the data-loader workers: nothing here waits for the device.
        """
        if mlm_rows is None and sbo_rows is None:
            return None, None
        attn_mask = self.bert.attention_mask(src_tokens) if padded else None
        features = self.bert(src_tokens, attn_mask, positions).flatten(0, 1)  # (B*R) x C
        heads = []
        if mlm_rows is not None:
            heads.append((self.mlm_head(features.index_select(0, mlm_rows)), self.mlm_head.bias))
        if sbo_rows is not None:
            left, right = features.index_select(0, sbo_rows[:, 0]), features.index_select(0, sbo_rows[:, 1])
            heads.append((self.sbo_head(left, right, sbo_rows[:, 2]), self.sbo_head.bias))
        logits = project_to_vocabulary(self.embed_weight, heads)
        mlm_logits = logits.pop(0) if mlm_rows is not None else None
        sbo_logits = logits.pop(0) if sbo_rows is not None else None
        return mlm_logits, sbo_logits

    def max_positions(self):
        return self.cfg.max_positions


@register_model("span_bert", dataclass=SpanBertModelConfig)
class SpanBertModel(FairseqEncoderModel):
    """SpanBERT (Joshi et al., 2020): span masking + span boundary objective, no NSP."""

    def __init__(self, cfg, encoder):
        super().__init__(encoder)
        self.cfg = cfg
        self.classification_heads = nn.ModuleDict()  # fine-tuning heads by name, as RoBERTa's

    @classmethod
    def build_model(cls, cfg, task):
        check_precision_flags(cfg)
        # Only the span_bert task trains the pretraining heads; it says so by this attribute, since
        # a model may not import the tasks layer. Fine-tuning tasks (sentence_prediction) get none.
        pretraining_heads = getattr(task, "trains_pretraining_heads", False)
        model = cls.for_dictionary(cfg, task.source_dictionary, pretraining_heads)
        if cfg.compile:  # training only: a model loaded for inference stays eager
            encoder = model.encoder
            compile_in_place([m for m in (encoder.bert, encoder.mlm_head, encoder.sbo_head) if m is not None])
        return model

    @classmethod
    def for_dictionary(cls, cfg, dictionary, pretraining_heads=True):
        """The model of `cfg` over `dictionary`; loaders that have no data to set a task up on use this
        (with `pretraining_heads` where the state dict they load holds them)."""
        # The bare model name (hydra's model._name: span_bert) runs no architecture function.
        name = getattr(cfg, "_name", None) or getattr(cfg, "arch", None)
        fill_architecture(cfg, name if name in ARCHITECTURE_SIZES else DEFAULT_ARCHITECTURE)
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(cfg, name) < 1.0:
                raise UserInputError(f"--{name.replace('_', '-')} must lie in [0, 1), got {getattr(cfg, name)}")
        return cls(cfg, SpanBertEncoder(cfg, dictionary, pretraining_heads))

    def forward(self, src_tokens, src_lengths=None, padded=True, positions=None, mlm_rows=None,
                sbo_rows=None, features_only=False, classification_head_name=None,
                return_all_hiddens=False, **unused):
        if features_only or classification_head_name is not None:
            return self._fine_tuning_forward(src_tokens, classification_head_name, return_all_hiddens)
        with self._precision(src_tokens.device.type):
            return self.encoder(src_tokens, src_lengths, padded=padded, positions=positions,
                                mlm_rows=mlm_rows, sbo_rows=sbo_rows)

    def _precision(self, device_type):
        """--autocast-bf16 adds a bf16 autocast; without it the caller's autocast (fairseq's --amp,
        a benchmark's) or none stays in force: a disabled autocast here would switch an outer one off."""
        if getattr(self.cfg, "autocast_bf16", False):  # configs older than the flag lack it
            return torch.autocast(device_type, torch.bfloat16)
        return contextlib.nullcontext()

    def _fine_tuning_forward(self, src_tokens, classification_head_name, return_all_hiddens):
        """RoBERTa's `features_only` forward: (head output or B x T x C features, {"inner_states"}).

        Every position is computed; token types follow BERT's pairs (`bert_token_types`); the
        attention mask is always passed, so nothing waits for the device to ask whether it is needed.
        """
        dictionary = self.encoder.dictionary
        is_token = src_tokens.ne(dictionary.pad())  # B x T
        token_types = bert_token_types(src_tokens, dictionary.sep(), dictionary.pad())
        states = [] if return_all_hiddens else None
        with self._precision(src_tokens.device.type):
            x = self.encoder.bert(src_tokens, is_token[:, None, None, :], token_types=token_types,
                                  hidden_states=states)  # B x T x C
            if classification_head_name is not None:
                x = self.classification_heads[classification_head_name](x)
        return x, {"inner_states": states}

    def register_classification_head(self, name, num_classes=None, inner_dim=None, kind="sentence", **kwargs):
        """Add (or replace) fine-tuning head `name`: kind "sentence" (B x num_classes, on [CLS]) or
        "span" (B x T x 2 start / end logits); docs/DESIGN.md, "Heads"."""
        if name in self.classification_heads:
            previous = head_sizes(self.classification_heads[name])
            if previous != (kind, num_classes, inner_dim):
                logger.warning(f"re-registering head {name!r} as {kind}, num_classes {num_classes}, "
                               f"inner_dim {inner_dim} (was {previous[0]}, {previous[1]}, {previous[2]})")
        head = build_fine_tuning_head(kind, self.cfg.encoder_embed_dim, num_classes, inner_dim, self.cfg.dropout)
        # In the model's mode: a head registered on a model in eval mode (the hub's) has no dropout.
        self.classification_heads[name] = head.train(self.training)

    def register_checkpoint_heads(self, state_dict):
        """Register every fine-tuning head `state_dict` holds that this model lacks (the hub's
        loading: a fine-tuned checkpoint keeps its heads)."""
        for name, (kind, num_classes, inner_dim) in checkpoint_head_sizes(state_dict, "").items():
            if name not in self.classification_heads:
                self.register_classification_head(name, num_classes, inner_dim, kind=kind)

    def upgrade_state_dict_named(self, state_dict, name):
        """RoBERTa's rules for heads: checkpoint heads this model lacks (or of another size) are
        dropped, heads this model has and the checkpoint lacks start fresh; the pretraining heads are
        left out of a model built without them. What changed is logged in one line."""
        prefix = name + "." if name != "" else ""
        super().upgrade_state_dict_named(state_dict, name)
        notes = []
        if self.encoder.mlm_head is None:
            left_out = [k for k in state_dict if k.startswith(tuple(prefix + p for p in PRETRAINING_HEADS))]
            for key in left_out:
                del state_dict[key]
            if left_out:
                notes.append(f"pretraining heads (encoder.mlm_head, encoder.sbo_head: {len(left_out)} tensors) "
                             f"left out of this model")
        root = prefix + "classification_heads."
        for head, sizes in checkpoint_head_sizes(state_dict, prefix).items():
            ours = self.classification_heads[head] if head in self.classification_heads else None
            if ours is None or head_sizes(ours) != sizes:
                for key in [k for k in state_dict if k.startswith(f"{root}{head}.")]:
                    del state_dict[key]
                why = "not in this model" if ours is None else f"sizes {sizes} differ from {head_sizes(ours)}"
                notes.append(f"checkpoint head {head!r} dropped ({why})")
        fresh = set()
        for key, value in self.classification_heads.state_dict().items():
            if root + key not in state_dict:
                state_dict[root + key] = value
                fresh.add(key.split(".")[0])
        notes += [f"head {head!r} initialised fresh (not in the checkpoint)" for head in sorted(fresh)]
        if notes:
            logger.info("loading span_bert weights: " + "; ".join(notes))

    def extract_features(self, src_tokens, return_all_hiddens=False, token_types=None):
        return self.encoder.extract_features(src_tokens, return_all_hiddens, token_types)

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        # Every loading path (--restore-file, --finetune-from-model, the hub) comes here. A
        # checkpoint of another vocabulary would fail with one size mismatch per vocabulary-sized
        # tensor; this names the cause in one line instead.
        check_vocabulary_size(state_dict, len(self.encoder.dictionary), "the checkpoint", "the data's dict.txt")
        return super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)

    def max_positions(self):
        return self.encoder.max_positions()

    # The hub layer (spanbert_fairseq.hub) puts its loader here when it is imported: a model must
    # not import the hub that wraps it.
    hub_loader = None

    @classmethod
    def from_pretrained(cls, model_name_or_path, checkpoint_file=None, data_name_or_path=None, **overrides):
        """RoBERTa's hub convention: a trained checkpoint with its tokenizer, as a `SpanBertHubInterface`.

        `model_name_or_path`: the checkpoint's directory (or the checkpoint file). Without
        `checkpoint_file`: checkpoint_best.pt, else checkpoint_last.pt, else model.pt. The vocabulary
        is found beside the checkpoint, else in `data_name_or_path`, else in the data directory the
        checkpoint was trained on. `overrides` replace model config values (e.g. dropout=0.0).
        """
        return cls.hub_loader(model_name_or_path, checkpoint_file, data_name_or_path, **overrides)


@register_model_architecture("span_bert", "spanbert_base")
def spanbert_base(args):
    fill_architecture(args, "spanbert_base")


@register_model_architecture("span_bert", "spanbert_large")
def spanbert_large(args):
    fill_architecture(args, "spanbert_large")


@register_model_architecture("span_bert", "spanbert_tiny")
def spanbert_tiny(args):
    """For tests and the CPU demo."""
    fill_architecture(args, "spanbert_tiny")
