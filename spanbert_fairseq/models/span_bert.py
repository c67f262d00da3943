"""The `span_bert` model: BERT's encoder with an MLM head and a span boundary objective head.

State-dict keys (docs/DESIGN.md): `encoder.bert.*` are HuggingFace `BertModel`'s keys (no pooler),
`encoder.mlm_head.*` BERT's `cls.predictions`, `encoder.sbo_head.*` the authors'
`cls.pair_target_predictions`. Both heads' output projections are the word embeddings.
Fine-tuning heads (`classification_heads.NAME.*`) are registered by name, as RoBERTa's.
"""

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

from .bert_encoder import BertBody, bert_token_types, init_bert_weights, select_positions
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

    def forward(self, src_tokens, src_lengths=None, pairs=None, masked_tokens=None,
                pair_target_mask=None, **unused):
        """Logits for the masked tokens and for the SBO targets.

        src_tokens: B x T.  pairs: B x K x 2 positions (in src_tokens) of each span's boundaries.
        masked_tokens: B x T bool, True where the MLM predicts.
        pair_target_mask: B x K x P bool, True where pair_targets holds a token.
        Returns (mlm_logits M x V, sbo_logits S x V), rows in row-major order of the masks
        (the order of `target[masked_tokens]` and `pair_targets[pair_target_mask]`); an output is
        None when its mask is None.
        """
        B, T = src_tokens.shape
        # Turn masks into row indices before the encoder runs: nonzero() waits for the device,
        # and here its queue is empty, whereas after the encoder it would stall the step.
        attn_mask = self.bert.attention_mask(src_tokens)
        mlm_rows = None if masked_tokens is None else masked_tokens.flatten().nonzero().squeeze(1)
        sbo_rows = None if pair_target_mask is None else self._sbo_rows(pairs, pair_target_mask, T)

        # The last layer's output is needed at the heads' rows only: it computes just those.
        positions, out_row = select_positions(B, T, mlm_rows, *(sbo_rows[:2] if sbo_rows else ()))
        features = self.bert(src_tokens, attn_mask, positions).flatten(0, 1)  # (B*R) x C
        heads = []
        if mlm_rows is not None:
            heads.append((self.mlm_head(features[out_row[mlm_rows]]), self.mlm_head.bias))
        if sbo_rows is not None:
            left_rows, right_rows, span_index = sbo_rows
            left, right = features[out_row[left_rows]], features[out_row[right_rows]]
            heads.append((self.sbo_head(left, right, span_index), self.sbo_head.bias))
        logits = project_to_vocabulary(self.embed_weight, heads)
        mlm_logits = logits.pop(0) if mlm_rows is not None else None
        sbo_logits = logits.pop(0) if sbo_rows is not None else None
        return mlm_logits, sbo_logits

    def _sbo_rows(self, pairs, pair_target_mask, seq_len):
        """For every SBO target: rows of its left and right boundary in (B*T) x C, its span index."""
        B, K, P = pair_target_mask.shape
        assert P <= self.cfg.max_pair_targets, (
            f"batch has {P} pair targets per span but the model has max_pair_targets="
            f"{self.cfg.max_pair_targets}"
        )
        slots = pair_target_mask.flatten().nonzero().squeeze(1)  # S: indices into B*K*P
        pair_index, span_index = slots // P, slots % P  # S: index into B*K, index within the span
        boundaries = pairs.reshape(B * K, 2)[pair_index]  # S x 2
        first_row = (pair_index // K) * seq_len  # S: row of position 0 of the sample
        return first_row + boundaries[:, 0], first_row + boundaries[:, 1], span_index

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

    def forward(self, src_tokens, src_lengths=None, pairs=None, masked_tokens=None,
                pair_target_mask=None, features_only=False, classification_head_name=None,
                return_all_hiddens=False, **unused):
        if features_only or classification_head_name is not None:
            return self._fine_tuning_forward(src_tokens, classification_head_name, return_all_hiddens)
        bf16 = getattr(self.cfg, "autocast_bf16", False)  # configs older than the flag lack it
        if bf16 and self.encoder.embed_weight.dtype != torch.float32:
            raise UserInputError("--autocast-bf16 keeps fp32 weights under bf16 autocast: drop --fp16 / "
                                 "--memory-efficient-fp16")
        with torch.autocast(src_tokens.device.type, torch.bfloat16, enabled=bf16):
            return self.encoder(
                src_tokens, src_lengths, pairs=pairs, masked_tokens=masked_tokens,
                pair_target_mask=pair_target_mask,
            )

    def _fine_tuning_forward(self, src_tokens, classification_head_name, return_all_hiddens):
        """RoBERTa's `features_only` forward: (head output or B x T x C features, {"inner_states"}).

        Every position is computed; token types follow BERT's pairs (`bert_token_types`); the
        attention mask is always passed, so nothing waits for the device to ask whether it is needed.
        """
        bf16 = getattr(self.cfg, "autocast_bf16", False)
        dictionary = self.encoder.dictionary
        is_token = src_tokens.ne(dictionary.pad())  # B x T
        token_types = bert_token_types(src_tokens, dictionary.sep(), dictionary.pad())
        states = [] if return_all_hiddens else None
        with torch.autocast(src_tokens.device.type, torch.bfloat16, enabled=bf16):
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
