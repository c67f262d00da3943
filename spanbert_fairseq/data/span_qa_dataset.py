"""Extractive QA windows as a FairseqDataset: `[CLS] question [SEP] window [SEP]` rows with their
start and end positions (docs/DESIGN.md, "Fine-tuning batches")."""

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from spanbert_text.qa_windows import encode_question, row_tokens, windows


class SpanQADataset(FairseqDataset):
    """One item per window of each question's context.

    `first_id` offsets the windows' ids, so that ids stay distinct across the task's splits and a
    batch's `id` alone finds its window (`window(id)`), on the data-loader workers and after.
    `shuffle` (training): a fresh order each epoch, `batch_order` "random" or "length" (SpanQAConfig).
    """

    def __init__(self, questions, text_tokenizer, dictionary, params, first_id=0, shuffle=False, seed=1, path="",
                 batch_order="random"):
        self.questions, self.params, self.dictionary = questions, params, dictionary
        self.first_id, self.shuffle, self.seed, self.epoch = first_id, shuffle, seed, 1
        self.batch_order = batch_order
        self.encoded, self.windows, rows, contexts = [], [], [], {}
        for q, question in enumerate(questions):
            where = f"{path}: question {question.qid}"
            encoded = encode_question(question, text_tokenizer, dictionary, params, where=where, contexts=contexts)
            self.encoded.append(encoded)
            self.windows.append(windows(encoded, params))
            rows += [(q, w) for w in range(len(self.windows[-1]))]
        self.rows = np.array(rows, dtype=np.int64).reshape(-1, 2)  # (N, 2): question, window within it
        lengths = [len(self.encoded[q].question_ids) + self.windows[q][w].doc_length + 3 for q, w in self.rows]
        self.sizes = np.array(lengths, dtype=np.int64)

    def __len__(self):
        return len(self.rows)

    def window(self, index):
        """(question, its EncodedQuestion, the window, all the question's windows) of item `index`."""
        q, w = self.rows[index]
        return self.questions[q], self.encoded[q], self.windows[q][w], self.windows[q]

    def __getitem__(self, index):
        _, encoded, window, _ = self.window(index)
        tokens = row_tokens(encoded, window, self.dictionary.cls(), self.dictionary.sep())
        return {
            "id": self.first_id + index,
            "source": torch.from_numpy(tokens),
            "start": window.start_position,
            "end": window.end_position,
        }

    def collater(self, samples):
        if not samples:
            return {}
        tokens = data_utils.collate_tokens([s["source"] for s in samples], self.dictionary.pad())  # B x T
        lengths = torch.tensor([len(s["source"]) for s in samples])
        return {
            "id": torch.tensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": int(lengths.sum()),
            "net_input": {"src_tokens": tokens, "src_lengths": lengths},
            "start_positions": torch.tensor([s["start"] for s in samples]),
            "end_positions": torch.tensor([s["end"] for s in samples]),
        }

    def num_tokens(self, index):
        return self.sizes[index]

    def size(self, index):
        return self.sizes[index]

    def set_epoch(self, epoch):
        self.epoch = epoch

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return not self.shuffle  # a training set is shuffled anew each epoch

    def ordered_indices(self):
        """Training: a fresh permutation each epoch (a function of seed and epoch), cut into batches
        as it stands ("random") or first sorted stably by length ("length"). Validation: by length."""
        if not self.shuffle:
            return np.argsort(self.sizes, kind="stable")
        with data_utils.numpy_seed(self.seed, self.epoch):
            order = np.random.permutation(len(self))
        if self.batch_order == "length":
            return order[np.argsort(self.sizes[order], kind="stable")]
        return order
