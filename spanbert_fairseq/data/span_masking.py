"""SpanBERT span masking (SPEC section 2) and SBO targets (section 3): a thin wrapper over the kernel.

`SpanMasker.mask_block(block, seed, epoch, index)` is a pure function of its arguments; the work is
done by `span_masking_fast.SpanMaskingKernel` (Cython, splitmix64 keyed on seed, epoch, index).
"""

import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import torch
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from .span_lengths import span_length_probs

try:
    from . import span_masking_fast
except ImportError as err:  # the package was copied without building its extension
    span_masking_fast = None
    _IMPORT_ERROR = err

logger = logging.getLogger(__name__)

REPLACEMENT_METHODS = ChoiceEnum(["span", "word_piece"])
RANDOM_TOKEN_SOURCES = ChoiceEnum(["unigram", "uniform"])
MASKING_SCHEMES = ChoiceEnum(["span", "subword", "whole_word"])
_SCHEME_CODES = {"span": 0, "subword": 1, "whole_word": 2}


@dataclass
class SpanMaskingConfig(FairseqDataclass):
    """The masking flags of the span_bert task; defaults are SPEC sections 2-3."""

    mask_ratio: float = field(
        default=0.15, metadata={"help": "fraction of each block to mask: exactly ceil(ratio * length) tokens"}
    )
    geometric_p: float = field(
        default=0.2, metadata={"help": "p of the span-length geometric, truncated to [span-lower, span-upper]"}
    )
    span_lower: int = field(default=1, metadata={"help": "shortest span, in whole words"})
    span_upper: int = field(default=10, metadata={"help": "longest span, in whole words"})
    max_pair_targets: int = field(
        default=15, metadata={"help": "SBO predicts at most this many tokens of each span (its first ones)"}
    )
    replacement_method: REPLACEMENT_METHODS = field(
        default="span",
        metadata={"help": "decide mask/random/keep once per merged span (authors) or per token (BERT)"},
    )
    random_token_source: RANDOM_TOKEN_SOURCES = field(
        default="unigram",
        metadata={"help": "random replacements from the corpus unigram (dict.txt counts; the authors' "
                  "code) or uniform over the non-special vocabulary (BERT)"},
    )
    masking_scheme: MASKING_SCHEMES = field(
        default="span",
        metadata={"help": "span: geometric whole-word spans (SpanBERT); subword: random tokens; "
                  "whole_word: random whole words (the paper's ablations)"},
    )
    leave_unmasked_prob: float = field(
        default=0.1, metadata={"help": "probability that a masked span (or token) is left as it is"}
    )
    random_token_prob: float = field(
        default=0.1, metadata={"help": "probability that a masked span (or token) becomes random tokens"}
    )


class MaskedBlock(NamedTuple):
    source: torch.Tensor  # (n,) the block with masked positions replaced
    target: torch.Tensor  # (n,) original token at masked positions, pad elsewhere
    pairs: torch.Tensor  # (K, 2) block positions of each SBO span's left and right boundary token
    pair_targets: torch.Tensor  # (K, max_pair_targets) the span's first original tokens, pad-filled


def check_masking_config(cfg):
    """Raise ValueError naming the flag for any masking option outside its range."""
    c = _resolved(cfg)
    if not 0.0 < c["mask_ratio"] < 1.0:
        raise ValueError(f"--mask-ratio must lie in (0, 1), got {c['mask_ratio']}")
    if not 0.0 < c["geometric_p"] <= 1.0:
        raise ValueError(f"--geometric-p must lie in (0, 1], got {c['geometric_p']}")
    if c["span_lower"] < 1:
        raise ValueError(f"--span-lower must be at least 1, got {c['span_lower']}")
    if c["span_upper"] < c["span_lower"]:
        raise ValueError(f"--span-upper ({c['span_upper']}) must not be below --span-lower ({c['span_lower']})")
    if c["max_pair_targets"] < 1:
        raise ValueError(f"--max-pair-targets must be at least 1, got {c['max_pair_targets']}")
    for flag in ("leave_unmasked_prob", "random_token_prob"):
        if not 0.0 <= c[flag] <= 1.0:
            raise ValueError(f"--{flag.replace('_', '-')} must lie in [0, 1], got {c[flag]}")
    if c["leave_unmasked_prob"] + c["random_token_prob"] > 1.0:
        raise ValueError("--leave-unmasked-prob plus --random-token-prob must not exceed 1")
    for flag, choices in (("replacement_method", REPLACEMENT_METHODS), ("random_token_source", RANDOM_TOKEN_SOURCES),
                          ("masking_scheme", MASKING_SCHEMES)):
        c[flag] = str(c[flag])  # a plain string, not fairseq's per-dataclass enum (which does not pickle)
        if c[flag] not in choices.__members__:
            raise ValueError(f"--{flag.replace('_', '-')} must be one of {list(choices.__members__)}, "
                             f"got {c[flag]!r}")
    return c


def _resolved(cfg):
    """The masking options of cfg (a SpanMaskingConfig, a task config or a Namespace), defaults filled in."""
    defaults = SpanMaskingConfig()
    return {name: getattr(cfg, name, getattr(defaults, name)) for name in SpanMaskingConfig.__dataclass_fields__
            if not name.startswith("_")}


def fast_kernels():
    """The compiled module, or an ImportError that says how to build it."""
    if span_masking_fast is None:
        raise ImportError(
            "spanbert_fairseq.data.span_masking_fast is not built; run "
            "`pip install --no-build-isolation -e .` in the repository"
        ) from _IMPORT_ERROR
    return span_masking_fast


class SpanMasker:
    """Masks blocks as SPEC section 2 says and extracts the SBO targets of section 3."""

    def __init__(self, cfg, dictionary, unigram_counts=None):
        c = check_masking_config(cfg)
        self.cfg = c
        self.unigram_counts = unigram_counts
        self.dictionary = dictionary
        self.pad = dictionary.pad()
        self.max_pair_targets = int(c["max_pair_targets"])
        maskable = np.ones(len(dictionary), dtype=bool)
        maskable[dictionary.special_ids()] = False
        length_cdf = np.cumsum(span_length_probs(c["geometric_p"], c["span_lower"], c["span_upper"]))
        length_cdf[-1] = 1.0
        random_ids, random_cdf = self._random_token_table(c["random_token_source"], maskable, unigram_counts)
        self.kernel = fast_kernels().SpanMaskingKernel(
            dictionary.word_start_table(), maskable, length_cdf, int(c["span_lower"]), float(c["mask_ratio"]),
            _SCHEME_CODES[c["masking_scheme"]], c["replacement_method"] == "span",
            1.0 - c["leave_unmasked_prob"] - c["random_token_prob"], float(c["random_token_prob"]),
            random_ids, random_cdf, dictionary.mask(), self.pad, self.max_pair_targets,
        )

    def __getstate__(self):
        # The compiled kernel does not pickle (spawned data-loader workers); rebuild it instead.
        return {"cfg": self.cfg, "dictionary": self.dictionary, "unigram_counts": self.unigram_counts}

    def __setstate__(self, state):
        self.__init__(SimpleNamespace(**state["cfg"]), state["dictionary"], state["unigram_counts"])

    def _random_token_table(self, source, maskable, unigram_counts):
        """(candidate ids, their CDF) for random replacements; an empty CDF means uniform."""
        ids = np.flatnonzero(maskable).astype(np.int64)
        if source == "uniform":
            return ids, np.empty(0)
        counts = np.asarray(self.dictionary.count if unigram_counts is None else unigram_counts, dtype=np.float64)
        if counts.shape != (len(self.dictionary),):
            raise ValueError(f"unigram_counts has {counts.size} entries, the dictionary {len(self.dictionary)}")
        weights = np.clip(counts[ids], 0, None)
        if weights.sum() <= 0:
            raise ValueError("--random-token-source unigram needs token counts in dict.txt (all are 0); "
                             "write real counts or pass --random-token-source uniform")
        if np.all(weights == weights[0]):
            logger.info("dict.txt counts are all equal: unigram random tokens are uniform over the vocabulary")
        keep = weights > 0
        cdf = np.cumsum(weights[keep]) / weights.sum()
        cdf[-1] = 1.0
        return ids[keep], cdf

    def budget(self, n):
        """Tokens masked in a block of n tokens without specials: ceil(mask_ratio * n)."""
        return self.kernel.budget(n)

    def mask_block(self, block, seed, epoch, index):
        """block: (n,) int64 token ids without [CLS]/[SEP] -> MaskedBlock; pure in (block, seed, epoch, index)."""
        block = np.ascontiguousarray(block, dtype=np.int64)
        source, target, pairs, pair_targets = self.kernel.mask(
            block, *(int(x) & 0xFFFFFFFFFFFFFFFF for x in (seed, epoch, index))
        )
        return MaskedBlock(torch.from_numpy(source), torch.from_numpy(target), torch.from_numpy(pairs),
                           torch.from_numpy(pair_targets))

    def trace_spans(self, block, seed, epoch, index):
        """(S, 3) rows (first token, end exclusive, drawn words) of the spans `mask_block` places; for tests."""
        block = np.ascontiguousarray(block, dtype=np.int64)
        return self.kernel.trace_spans(block, *(int(x) & 0xFFFFFFFFFFFFFFFF for x in (seed, epoch, index)))
