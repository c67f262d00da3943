"""Per span length: MLM and SBO accuracy and loss, exact match of whole spans, and the counts.

A span is a merged span of the masked block (a maximal run of masked tokens, which is what the
model sees), its length counted in whole words as the masker counts them. Lengths 1..10 are the
masker's range; merged neighbours can be longer and go to one last row.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..data.head_rows import head_rows

MAX_SPAN_WORDS = 10
ROWS = [str(words) for words in range(1, MAX_SPAN_WORDS + 1)] + [f"{MAX_SPAN_WORDS + 1}+", "all"]
COUNTS = (
    "spans",  # merged spans
    "mlm_tokens", "mlm_correct", "mlm_loss",  # loss: summed, in bits
    "mlm_exact",  # spans whose every token the MLM head got right
    "sbo_spans",  # spans the SBO head predicts whole (both boundaries in the block, <= max_pair_targets tokens)
    "sbo_tokens", "sbo_correct", "sbo_loss",
    "sbo_exact",
)


class SpanLengthScores:
    """Sums of COUNTS per row of ROWS (the last row, "all", is their total)."""

    def __init__(self):
        self.sums = {name: np.zeros(len(ROWS) - 1) for name in COUNTS}  # (rows without "all",) each

    def add_batch(self, model, batch, pad):
        """Run `model` (an EvaluatedModel) on one SpanBatch and add its figures."""
        sample = batch.sample
        masked = sample["target"].ne(pad)  # B x T
        pair_targets = sample["pair_targets"][:, :, : model.model.cfg.max_pair_targets]  # B x K x P
        pair_mask = pair_targets.ne(pad)
        src_tokens = sample["net_input"]["src_tokens"]
        # The batch's own rows hold the task's max_pair_targets; this model may predict fewer.
        rows = head_rows(src_tokens, sample["target"], pad, sample["pairs"], pair_targets)
        with torch.inference_mode():
            mlm_logits, sbo_logits = model.model(
                src_tokens, padded=rows.padded, positions=rows.positions,
                mlm_rows=rows.mlm_rows if model.mlm else None, sbo_rows=rows.sbo_rows if model.sbo else None,
            )
        row_of_span = np.minimum(batch.span_words, MAX_SPAN_WORDS + 1) - 1  # (S,)
        n_spans = len(row_of_span)
        self._add("spans", row_of_span, np.ones(n_spans))
        if mlm_logits is not None:
            span = batch.token_span[masked].numpy()  # M
            self._add_head("mlm", mlm_logits, sample["target"][masked], span, row_of_span, np.ones(n_spans, bool))
        if sbo_logits is not None:
            span = batch.pair_span.unsqueeze(-1).expand_as(pair_mask)[pair_mask].numpy()  # S_targets
            whole = np.zeros(n_spans, bool)
            whole[batch.pair_span[batch.pair_span >= 0].numpy()] = True
            whole &= batch.span_tokens <= pair_targets.size(-1)
            self._add_head("sbo", sbo_logits, pair_targets[pair_mask], span, row_of_span, whole)

    def _add_head(self, head, logits, targets, span, row_of_span, whole):
        """logits N x V, targets N, span N (the batch's span index of each target), whole (S,): the
        spans whose every token is a target of this head."""
        logits = logits.float()
        correct = (logits.argmax(-1) == targets).numpy()
        loss = F.cross_entropy(logits, targets, reduction="none").numpy() / math.log(2)
        rows = row_of_span[span]
        self._add(f"{head}_tokens", rows, np.ones(len(span)))
        self._add(f"{head}_correct", rows, correct)
        self._add(f"{head}_loss", rows, loss)
        wrong = np.bincount(span, weights=(~correct).astype(np.float64), minlength=len(row_of_span))
        exact = whole & (wrong == 0)
        if head == "sbo":
            self._add("sbo_spans", row_of_span, whole)
        self._add(f"{head}_exact", row_of_span, exact)

    def _add(self, name, rows, weights):
        self.sums[name] += np.bincount(rows, weights=np.asarray(weights, dtype=np.float64),
                                       minlength=len(ROWS) - 1)

    def rows(self, mlm=True, sbo=True):
        """One dict per row of ROWS: the counts, then the figures (None where there is nothing to divide)."""
        table = []
        for i, label in enumerate(ROWS):
            counts = {name: float(sums.sum() if label == "all" else sums[i]) for name, sums in self.sums.items()}
            figures = {"span_words": label, "spans": int(counts["spans"])}
            for head, on in (("mlm", mlm), ("sbo", sbo)):
                if not on:
                    continue
                tokens, spans = counts[f"{head}_tokens"], counts["spans" if head == "mlm" else "sbo_spans"]
                figures.update({
                    f"{head}_tokens": int(tokens),
                    f"{head}_acc": _percent(counts[f"{head}_correct"], tokens),
                    f"{head}_loss": counts[f"{head}_loss"] / tokens if tokens else None,
                    f"{head}_spans": int(spans),
                    f"{head}_exact": _percent(counts[f"{head}_exact"], spans),
                })
            table.append(figures)
        return table


def _percent(part, whole):
    return 100.0 * part / whole if whole else None
