"""The span_bert task: document blocks, span masking and SBO targets (docs/data.md)."""

import dataclasses
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import torch.distributed as dist
from fairseq import utils
from fairseq.data import SortDataset, data_utils
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING

from spanbert_text.errors import UserInputError
from spanbert_text.mmap_index import BinaryDataError

from ..data.binaries import TokenFile
from ..data.block_dataset import DocumentBlockDataset
from ..data.dictionary import BertDictionary
from ..data.span_masked_dataset import SpanMaskedDataset
from ..data.span_masking import MaskingParams, SpanMasker

logger = logging.getLogger(__name__)


@dataclass
class _DataFlags(FairseqDataclass):
    data: str = field(
        default=MISSING,
        metadata={"help": "colon-separated data directories (shards), one per epoch in round-robin; "
                  "each holds dict.txt and train/valid .bin/.idx"},
    )
    tokens_per_sample: int = field(
        default=512, metadata={"help": "tokens per example including [CLS] and [SEP]; blocks hold 2 fewer"}
    )
    seed: int = II("common.seed")


# The task's flags: the data flags above, then every masking flag with the default and help text
# that MaskingParams declares (one declaration; MaskingParams validates them).
SpanBertConfig = dataclasses.make_dataclass(
    "SpanBertConfig",
    [(f.name, f.type, field(default=f.default, metadata=f.metadata)) for f in dataclasses.fields(MaskingParams)],
    bases=(_DataFlags,),
    namespace={"__module__": __name__, "__doc__": "The span_bert task's flags."},
)


def _on_one_rank(check):
    """Run `check` (which raises a UserInputError or returns) on rank 0 only; every rank raises its error.

    The data is on storage every rank shares: one read of a whole .bin per job, not one per rank.
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        check()
        return
    failure, message = None, [None]
    if dist.get_rank() == 0:
        try:
            check()
        except Exception as error:  # noqa: BLE001 - every rank must hear of it, or the others wait forever
            failure, message[0] = error, str(error)
    dist.broadcast_object_list(message, src=0)  # the other ranks wait here for rank 0's verdict
    if failure is not None:
        raise failure
    if message[0] is not None:
        raise BinaryDataError(message[0])


@register_task("span_bert", dataclass=SpanBertConfig)
class SpanBertTask(FairseqTask):
    """SpanBERT pretraining data: `[CLS] span-masked block [SEP]` with MLM and SBO targets."""

    trains_pretraining_heads = True  # SpanBertModel.build_model builds the MLM and SBO heads

    def __init__(self, cfg, dictionary):
        super().__init__(cfg)
        if cfg.tokens_per_sample < 3:
            raise UserInputError(
                f"--tokens-per-sample must be at least 3 ([CLS] token [SEP]), got {cfg.tokens_per_sample}"
            )
        self.dictionary = dictionary
        self.masker = SpanMasker(MaskingParams.from_config(cfg), dictionary)

    @classmethod
    def load_dictionary(cls, filename):
        """dict.txt or vocab.txt with ids = line numbers (so fairseq-preprocess writes BERT ids)."""
        return BertDictionary.load(filename)

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        paths = utils.split_paths(cfg.data)
        if not paths:
            raise UserInputError("--data (the positional data directory) is empty")
        dict_path = os.path.join(paths[0], "dict.txt")
        dictionary = cls.load_dictionary(dict_path)
        logger.info(f"dictionary: {len(dictionary)} types from {dict_path}")
        return cls(cfg, dictionary)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        """Shard (epoch - 1) % N of `split`, checked against dict.txt, packed, masked, shuffled."""
        paths = utils.split_paths(self.cfg.data)
        data_path = paths[(epoch - 1) % len(paths)]
        tokens = TokenFile(os.path.join(data_path, split))
        dict_path = os.path.join(paths[0], "dict.txt")
        if not tokens.check_stamp(self.dictionary, dict_path):
            _on_one_rank(lambda: tokens.scan_ids(self.dictionary, dict_path))
        blocks = DocumentBlockDataset(tokens, self.cfg.tokens_per_sample - 2)
        counts = blocks.stats
        if counts["blocks"] == 0:
            raise UserInputError(f"{tokens.prefix}: no text, only document boundaries ({len(tokens.sizes)} lines)")
        logger.info(
            f"{split} {tokens.prefix}: {counts['blocks']} blocks, {counts['tokens']} tokens, "
            f"{counts['documents']} documents; {counts['split_lines']} lines longer than a block split; "
            f"{counts['empty_documents']} empty documents skipped"
        )
        dataset = SpanMaskedDataset(blocks, self.masker, self.cfg.seed)
        # fairseq loads unsharded data once, with whatever epoch the run (or its resume) starts in;
        # a permutation keyed on that epoch would make a resumed run see other batches.
        shard_round = (epoch - 1) // len(paths) if len(paths) > 1 else 0
        with data_utils.numpy_seed(self.cfg.seed, shard_round):
            shuffle = np.random.permutation(len(dataset))
        self.datasets[split] = SortDataset(dataset, sort_order=[shuffle, dataset.sizes])

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        self.check_model_positions(model)
        return model

    def check_model_positions(self, model):
        """--tokens-per-sample must fit the model's learned positions (--max-positions)."""
        positions = model.max_positions()
        if isinstance(positions, int) and self.cfg.tokens_per_sample > positions:
            raise UserInputError(
                f"--tokens-per-sample {self.cfg.tokens_per_sample} exceeds the model's {positions} positions "
                f"(--max-positions {positions}); use --tokens-per-sample {positions} or less, or a model "
                f"with more positions"
            )

    def max_positions(self):
        return self.cfg.tokens_per_sample

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary
