"""The `span_qa` criterion: start and end cross-entropies; validation decodes and scores answers."""

import math

import torch.nn.functional as F
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.logging import metrics

from spanbert_text.squad_metric import best_scores

from .squad_scores import SquadScoresMeter

QUESTIONS_KEY = "_squad"  # fairseq leaves keys starting with "_" out of the values it logs


@register_criterion("span_qa")
class SpanQALoss(FairseqCriterion):
    """loss = sum over windows of CE(start) + CE(end), with `sample_size` = 2 x windows, so the
    trainer's normalisation gives the mean of the two cross-entropies per window (BERT's loss),
    also when a batch is split across GPUs or --update-freq.

    In evaluation every window's best span is decoded and scored (exact_match, f1 over questions).
    """

    def forward(self, model, sample, reduce=True):
        head = self.task.cfg.classification_head_name
        logits, _ = model(sample["net_input"]["src_tokens"], features_only=True, classification_head_name=head)
        start_logits, end_logits = logits.float().unbind(-1)  # B x T each, fp32 for the loss
        loss = F.cross_entropy(start_logits, sample["start_positions"], reduction="sum") + F.cross_entropy(
            end_logits, sample["end_positions"], reduction="sum"
        )
        windows = sample["start_positions"].numel()
        logging_output = {
            "loss": loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": windows,
            "sample_size": 2 * windows,
        }
        if not model.training:
            logging_output["questions"] = self.scored_windows(sample, start_logits, end_logits)
        return loss, 2 * windows, logging_output

    def scored_windows(self, sample, start_logits, end_logits):
        entries = []
        for question, answer, version_2 in self.task.decode(sample, start_logits.detach(), end_logits.detach()):
            em, f1 = best_scores(answer.text, question.answer_texts)
            order = (-answer.char_start, -answer.char_end)
            entries.append((question.qid, answer.score, order, em, f1, answer.null_score, bool(question.answers),
                            version_2))
        return entries

    @staticmethod
    def reduce_metrics(logging_outputs):
        loss = sum(log.get("loss", 0) for log in logging_outputs)
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        metrics.log_scalar("loss", loss / max(sample_size, 1) / math.log(2), sample_size, round=3)
        entries = [e for log in logging_outputs for e in log.get("questions", ())]
        if entries:
            metrics.log_custom(SquadScoresMeter, QUESTIONS_KEY, entries)
            metrics.log_derived("exact_match", lambda meters: round(meters[QUESTIONS_KEY].scores()[0], 2))
            metrics.log_derived("f1", lambda meters: round(meters[QUESTIONS_KEY].scores()[1], 2))

    @staticmethod
    def logging_outputs_can_be_summed():
        return False  # the per-question entries are gathered, not summed, across ranks
