"""SpanBERT span masking and SBO targets: the validated parameters and a thin wrapper over the kernel.

`SpanMasker.mask_block(block, seed, epoch, index)` is a pure function of its arguments; the work is
done by `span_masking_fast.SpanMaskingKernel` (Cython, splitmix64 keyed on seed, epoch, index).
The algorithm, in the project's words: docs/data.md.
"""

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from fairseq.dataclass import ChoiceEnum

from spanbert_text.errors import UserInputError

from . import span_masking_fast
from .span_lengths import span_length_probs

logger = logging.getLogger(__name__)

REPLACEMENT_METHODS = ChoiceEnum(["span", "word_piece"])
RANDOM_TOKEN_SOURCES = ChoiceEnum(["unigram", "uniform"])
MASKING_SCHEMES = ChoiceEnum(list(span_masking_fast.SCHEMES))


class MaskingConfigError(UserInputError):
    """A masking flag outside its range; the message names the flag and the value."""


@dataclass(frozen=True)
class MaskingParams:
    """The masking flags of the span_bert task, validated once; the defaults are SpanBERT's.

    The task's config declares its masking flags from these fields (tasks/span_bert.py), so a flag,
    its default and its help text live here only.
    """

    mask_ratio: float = field(
        default=0.15, metadata={"help": "fraction of each block to mask: exactly ceil(ratio * length) tokens"}
    )
    geometric_p: float = field(
        default=0.2, metadata={"help": "p of the span-length geometric, truncated to [span-lower, span-upper]"}
    )
    span_lower: int = field(default=1, metadata={"help": "shortest span, in whole words"})
    span_upper: int = field(default=10, metadata={"help": "longest span, in whole words"})
    max_pair_targets: int = field(
        default=15, metadata={"help": "SBO predicts at most this many tokens of each span (its first ones); "
                              "also the size of the SBO head's position table"}
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

    def __post_init__(self):
        for choice in ("replacement_method", "random_token_source", "masking_scheme"):
            # A plain string: fairseq's per-dataclass enum values do not pickle into workers.
            object.__setattr__(self, choice, str(getattr(self, choice)))
        for problem in self._problems():
            raise MaskingConfigError(problem)

    def _problems(self):
        if not 0.0 < self.mask_ratio < 1.0:
            yield f"--mask-ratio must lie in (0, 1), got {self.mask_ratio}"
        if not 0.0 < self.geometric_p <= 1.0:
            yield f"--geometric-p must lie in (0, 1], got {self.geometric_p}"
        if self.span_lower < 1:
            yield f"--span-lower must be at least 1, got {self.span_lower}"
        if self.span_upper < self.span_lower:
            yield f"--span-upper ({self.span_upper}) must not be below --span-lower ({self.span_lower})"
        if self.max_pair_targets < 1:
            yield f"--max-pair-targets must be at least 1, got {self.max_pair_targets}"
        for name in ("leave_unmasked_prob", "random_token_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                yield f"--{name.replace('_', '-')} must lie in [0, 1], got {getattr(self, name)}"
        if self.leave_unmasked_prob + self.random_token_prob > 1.0:
            yield "--leave-unmasked-prob plus --random-token-prob must not exceed 1"
        for name, choices in (("replacement_method", REPLACEMENT_METHODS),
                              ("random_token_source", RANDOM_TOKEN_SOURCES), ("masking_scheme", MASKING_SCHEMES)):
            if getattr(self, name) not in choices.__members__:
                flag, value = name.replace("_", "-"), getattr(self, name)
                yield f"--{flag} must be one of {list(choices.__members__)}, got {value!r}"

    @classmethod
    def from_config(cls, cfg):
        """The masking flags of a task config (or any object with these attributes)."""
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})

    def length_probs(self):
        """P(span of l words) for l in span_lower..span_upper."""
        return span_length_probs(self.geometric_p, self.span_lower, self.span_upper)


class MaskedBlock(NamedTuple):
    source: torch.Tensor  # (n,) the block with masked positions replaced
    target: torch.Tensor  # (n,) original token at masked positions, pad elsewhere
    pairs: torch.Tensor  # (K, 2) block positions of each SBO span's left and right boundary token
    pair_targets: torch.Tensor  # (K, max_pair_targets) the span's first original tokens, pad-filled


class SpanMasker:
    """Masks blocks with SpanBERT's span masking and extracts the SBO targets (docs/data.md)."""

    def __init__(self, params, dictionary, unigram_counts=None):
        self.params = params
        self.unigram_counts = unigram_counts
        self.dictionary = dictionary
        self.pad = dictionary.pad()
        self.max_pair_targets = params.max_pair_targets
        maskable = np.ones(len(dictionary), dtype=bool)
        maskable[dictionary.special_ids()] = False
        length_cdf = np.cumsum(params.length_probs())
        length_cdf[-1] = 1.0
        random_ids, random_cdf = self._random_token_table(params.random_token_source, maskable, unigram_counts)
        self.kernel = span_masking_fast.SpanMaskingKernel(
            dictionary.word_start_table(), maskable, length_cdf, params.span_lower, params.mask_ratio,
            params.masking_scheme, params.replacement_method == "span",
            1.0 - params.leave_unmasked_prob - params.random_token_prob, params.random_token_prob,
            random_ids, random_cdf, dictionary.mask(), self.pad, params.max_pair_targets,
        )

    def __getstate__(self):
        # The compiled kernel does not pickle (spawned data-loader workers); rebuild it instead.
        return {"params": self.params, "dictionary": self.dictionary, "unigram_counts": self.unigram_counts}

    def __setstate__(self, state):
        self.__init__(state["params"], state["dictionary"], state["unigram_counts"])

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
            raise MaskingConfigError("--random-token-source unigram needs token counts in dict.txt (all are 0); "
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
        source, target, pairs, pair_targets = self.kernel.mask(block, *_as_uint64(seed, epoch, index))
        return MaskedBlock(torch.from_numpy(source), torch.from_numpy(target), torch.from_numpy(pairs),
                           torch.from_numpy(pair_targets))

    def trace_spans(self, block, seed, epoch, index):
        """(S, 3) rows (first token, end exclusive, drawn words) of the spans `mask_block` places; for tests."""
        return self.kernel.trace_spans(np.ascontiguousarray(block, dtype=np.int64), *_as_uint64(seed, epoch, index))


def _as_uint64(*keys):
    return tuple(int(k) & 0xFFFFFFFFFFFFFFFF for k in keys)


def merged_spans(masked):
    """(n,) bool -> (starts, ends) of its merged spans, the maximal runs of True; ends exclusive."""
    edges = np.diff(np.concatenate(([0], np.asarray(masked).astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
