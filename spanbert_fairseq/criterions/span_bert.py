"""The `span_bert` criterion: masked-LM loss plus the span boundary objective (docs/training.md, "Criterion")."""

import math
from dataclasses import dataclass, field

from fairseq import utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics

from .inplace_cross_entropy import cross_entropy_in_place


@dataclass
class SpanBertCriterionConfig(FairseqDataclass):
    sbo_weight: float = field(
        default=1.0, metadata={"help": "weight of the SBO loss against the MLM loss (paper: 1.0)"}
    )


@register_criterion("span_bert", dataclass=SpanBertCriterionConfig)
class SpanBertLoss(FairseqCriterion):
    """loss = sum over masked tokens of CE_MLM + sbo_weight * sum over SBO targets of CE_SBO.

    `sample_size` is the number of MLM targets, so the trainer's normalisation gives the paper's
    per-masked-token loss L(x_i) = L_MLM(x_i) + w * L_SBO(x_i). The authors' code instead averaged
    each term over its own count (MLM targets, SBO targets). With SBO targets ~ MLM targets minus
    the spans at block edges, the two differ by a few percent of the SBO weight; the summed form
    is what the paper states and what fairseq's trainer normalises correctly when batches are
    split across GPUs and --update-freq (a ratio of two separate means would not be).
    """

    def __init__(self, cfg: SpanBertCriterionConfig, task):
        super().__init__(task)
        self.sbo_weight = cfg.sbo_weight

    def forward(self, model, sample, reduce=True):
        # The collater put the targets in the heads' row order (data/head_rows.py): selecting them
        # here would wait for the device.
        mlm_targets, sbo_targets = sample["mlm_targets"], sample["sbo_targets"]  # M, S
        mlm_logits, sbo_logits = model(**sample["net_input"])
        # Summed CE in fp32 whatever the logits' dtype; backward reuses the logits' memory.
        mlm_loss, mlm_correct = cross_entropy_in_place(mlm_logits, mlm_targets)
        sbo_loss, sbo_correct = cross_entropy_in_place(sbo_logits, sbo_targets)
        loss = mlm_loss + self.sbo_weight * sbo_loss

        sample_size = mlm_targets.numel()
        logging_output = {
            "loss": loss.data,
            "mlm_loss": mlm_loss.data,
            "sbo_loss": sbo_loss.data,
            "mlm_correct": mlm_correct.data,
            "sbo_correct": sbo_correct.data,
            "mlm_targets": mlm_targets.numel(),
            "sbo_targets": sbo_targets.numel(),
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": sample_size,
        }
        return loss, sample_size, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        def total(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        sample_size, n_mlm, n_sbo = total("sample_size"), total("mlm_targets"), total("sbo_targets")
        # Losses in bits (base 2), fairseq's convention; ppl is the MLM perplexity.
        metrics.log_scalar("loss", total("loss") / max(sample_size, 1) / math.log(2), sample_size, round=3)
        metrics.log_scalar("mlm_loss", total("mlm_loss") / max(n_mlm, 1) / math.log(2), n_mlm, round=3)
        metrics.log_scalar("sbo_loss", total("sbo_loss") / max(n_sbo, 1) / math.log(2), n_sbo, round=3)
        metrics.log_derived("ppl", lambda meters: utils.get_perplexity(meters["mlm_loss"].avg))
        metrics.log_scalar("mlm_acc", 100.0 * total("mlm_correct") / max(n_mlm, 1), n_mlm, round=2)
        metrics.log_scalar("sbo_acc", 100.0 * total("sbo_correct") / max(n_sbo, 1), n_sbo, round=2)
        metrics.log_scalar("mlm_targets", n_mlm, priority=900, round=1)
        metrics.log_scalar("sbo_targets", n_sbo, priority=900, round=1)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
