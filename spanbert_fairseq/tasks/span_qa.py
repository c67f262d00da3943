"""The span_qa task: extractive QA (SQuAD v1.1 / v2.0, MRQA) fine-tuned from a span_bert checkpoint.

DATA holds `train.json` and `valid.json` as SQuAD distributes them (`--input-format mrqa`: MRQA's
`train.jsonl` / `valid.jsonl`); the vocabulary (dict.txt or vocab.txt with tokenizer.json /
spm.model beside it) is the checkpoint's, from `--vocab-dir` (default: DATA). docs/finetuning.md.
"""

import logging
import os
from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING

from spanbert_text.errors import UserInputError
from spanbert_text.qa_windows import NO_SPAN, WindowParams, decode_window
from spanbert_text.squad import read_questions
from spanbert_text.tokenization import load_text_tokenizer

from ..checkpoint_io import vocabulary_file
from ..data.dictionary import BertDictionary
from ..data.span_qa_dataset import SpanQADataset

logger = logging.getLogger(__name__)
INPUT_SUFFIX = {"squad": ".json", "mrqa": ".jsonl"}


@dataclass
class SpanQAConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "directory with train.json and valid.json (SQuAD's format)"})
    vocab_dir: str = field(
        default="", metadata={"help": "the checkpoint's vocabulary directory (dict.txt or vocab.txt, tokenizer.json "
                              "or spm.model); default: DATA"}
    )
    input_format: ChoiceEnum(["squad", "mrqa"]) = field(
        default="squad", metadata={"help": "squad: SPLIT.json as SQuAD distributes it; mrqa: MRQA's SPLIT.jsonl"}
    )
    max_seq_length: int = field(default=512, metadata={"help": "tokens per window row, [CLS] and [SEP]s included"})
    doc_stride: int = field(default=128, metadata={"help": "context tokens between the starts of two windows"})
    max_query_length: int = field(default=64, metadata={"help": "question tokens kept (the rest is cut)"})
    n_best: int = field(default=20, metadata={"help": "start and end candidates per window when decoding"})
    max_answer_length: int = field(default=30, metadata={"help": "the longest answer decoded, in tokens"})
    batch_order: ChoiceEnum(["random", "length"]) = field(
        default="random", metadata={"help": "training batches: random: windows drawn at random, as the authors' "
                                    "run_squad.py; length: windows of similar length together (less padding, but "
                                    "a context's longest windows, often those without the answer, share batches)"}
    )
    classification_head_name: str = field(default="span_qa", metadata={"help": "name of the span head"})
    seed: int = II("common.seed")


def window_params(cfg):
    """The windowing and decoding flags of a span_qa config (a DictConfig has no methods)."""
    return WindowParams(cfg.max_seq_length, cfg.doc_stride, cfg.max_query_length, cfg.n_best, cfg.max_answer_length)


@register_task("span_qa", dataclass=SpanQAConfig)
class SpanQATask(FairseqTask):
    """Windows of SQuAD questions with start/end labels; validation decodes each question's answer."""

    def __init__(self, cfg, dictionary, text_tokenizer):
        super().__init__(cfg)
        self.dictionary, self.text_tokenizer = dictionary, text_tokenizer
        self.params = window_params(cfg)
        self.version_2 = {}  # split -> whether its file marks unanswerable questions

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        vocab_dir = cfg.vocab_dir or cfg.data
        path = vocabulary_file(vocab_dir)
        if path is None:
            raise UserInputError(
                f"--vocab-dir {vocab_dir}: no dict.txt or vocab.txt; pass the directory of the checkpoint's "
                "vocabulary (spanbert-import's output directory, or the data fairseq-train pretrained on)"
            )
        dictionary = BertDictionary.load(path)
        return cls(cfg, dictionary, load_text_tokenizer(vocab_dir, dictionary))

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        path = os.path.join(self.cfg.data, split + INPUT_SUFFIX[self.cfg.input_format])
        if not os.path.isfile(path):
            raise UserInputError(f"split {split!r} not found: no {path}")
        questions, self.version_2[split] = read_questions(path, self.cfg.input_format)
        # Past every other split's ids, so a reloaded split never reuses another's.
        first_id = max((d.first_id + len(d) for name, d in self.datasets.items() if name != split), default=0)
        dataset = SpanQADataset(
            questions, self.text_tokenizer, self.dictionary, self.params, first_id=first_id,
            shuffle=split == "train", seed=self.cfg.seed, path=path, batch_order=self.cfg.batch_order,
        )
        logger.info(f"{split} {path}: {len(questions)} questions, {len(dataset)} windows"
                    f"{' (v2.0: unanswerable questions)' if self.version_2[split] else ''}")
        self.datasets[split] = dataset

    def window(self, window_id):
        """(dataset split, question, EncodedQuestion, window, all its windows) of a batch's `id`."""
        for split, dataset in self.datasets.items():
            if dataset.first_id <= window_id < dataset.first_id + len(dataset):
                return (split,) + dataset.window(window_id - dataset.first_id)
        raise KeyError(window_id)

    def decode(self, sample, start_logits, end_logits):
        """-> per window of the batch (question, its Answer in this window, whether its split is v2.0).

        start_logits, end_logits: B x T on any device."""
        results = []
        start_logits, end_logits = start_logits.float().cpu().numpy(), end_logits.float().cpu().numpy()
        lengths = sample["net_input"]["src_lengths"].tolist()
        for b, (window_id, length) in enumerate(zip(sample["id"].tolist(), lengths)):
            split, question, encoded, window, all_windows = self.window(window_id)
            answer = decode_window(start_logits[b, :length], end_logits[b, :length], encoded, question.context,
                                   window, all_windows, self.params)
            results.append((question, NO_SPAN.merge(answer), self.version_2[split]))
        return results

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        positions = model.max_positions()
        if isinstance(positions, int) and self.cfg.max_seq_length > positions:
            raise UserInputError(
                f"--max-seq-length {self.cfg.max_seq_length} exceeds the model's {positions} positions"
            )
        if self.cfg.classification_head_name not in model.classification_heads:
            model.register_classification_head(self.cfg.classification_head_name, num_classes=2, kind="span")
        return model

    def max_positions(self):
        return self.cfg.max_seq_length

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary
