"""The extractive-QA training step: span_qa (the plugin's model and criterion) against HuggingFace's
BertForQuestionAnswering, both from the same imported MiniLM-L6 weights, on the same batch of SQuAD
windows (squad_cloze.py), in one run, interleaved. Each step: zero_grad, forward + loss (the mean of
the start and end cross-entropies on both sides), backward, AdamW step; dropout 0.1 on both.

    python benchmarks/bench_finetune.py [--batch 16] [--seq-len 192] [--rounds 10] [--warmup 2]

Prints the median seconds per step of each side and the paired ratio span_qa / HF with a 95%
bootstrap interval (target: <= 1, no slower), after checking that both sides compute the same loss
in eval mode.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import benchlib
import squad_cloze

HEAD = "span_qa"


def span_qa_model(model_dir, seq_len):
    """The span_qa task, model (imported weights, fresh span head) and criterion, as fairseq-train builds them."""
    from fairseq import options, tasks, utils
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    from spanbert_fairseq.checkpoint_io import load_span_bert_checkpoint
    from spanbert_fairseq.interop.span_bert_checkpoint import fine_tuning_arch_flags, model_args_of

    utils.import_user_module(argparse.Namespace(user_dir=benchlib.USER_DIR))
    state = load_span_bert_checkpoint(str(model_dir / "model.pt"))
    argv = [str(model_dir), "--task", "span_qa", "--criterion", "span_qa",
            *fine_tuning_arch_flags(model_args_of(state["cfg"])),
            "--max-seq-length", str(seq_len), "--dropout", "0.1", "--attention-dropout", "0.1"]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    weights = state["model"]
    model.upgrade_state_dict_named(weights, "")
    model.load_state_dict(weights, strict=True, model_cfg=cfg.model)
    return task, model, task.build_criterion(cfg.criterion)


def batch_of_windows(task, batch):
    """The first `batch` windows of a cloze train.json written into the task's data directory."""
    squad_cloze.write_sets(Path(task.cfg.data), batch * 2, 10)
    task.load_dataset("train")
    dataset = task.datasets["train"]
    return dataset.collater([dataset[i] for i in range(batch)])


def hf_model(model, sample, dictionary):
    """BertForQuestionAnswering from the same weights, its qa_outputs the span head's; and its inputs."""
    import torch
    from transformers import BertForQuestionAnswering

    from spanbert_fairseq.models.bert_encoder import bert_token_types

    hf = BertForQuestionAnswering.from_pretrained(str(benchlib.minilm_dir()), hidden_dropout_prob=0.1,
                                                  attention_probs_dropout_prob=0.1)
    head = model.classification_heads[HEAD].out_proj
    with torch.no_grad():
        hf.qa_outputs.weight.copy_(head.weight)
        hf.qa_outputs.bias.copy_(head.bias)
    tokens = sample["net_input"]["src_tokens"]
    inputs = {"input_ids": tokens, "attention_mask": tokens.ne(dictionary.pad()).long(),
              "token_type_ids": bert_token_types(tokens, dictionary.sep(), dictionary.pad()),
              "start_positions": sample["start_positions"], "end_positions": sample["end_positions"]}
    return hf, inputs


def stepper(model, loss_fn):
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn().backward()
        optimizer.step()

    return step


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16, help="windows per step")
    p.add_argument("--seq-len", type=int, default=192, help="--max-seq-length of the windows")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--work", type=Path, help="where the imported checkpoint goes (default: a temporary directory)")
    return p.parse_args(argv)


def main(argv=None):
    import torch

    args = parse_args(argv)
    benchlib.quiet()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        model_dir = benchlib.imported_minilm(work)
        torch.manual_seed(1)
        task, model, criterion = span_qa_model(model_dir, args.seq_len)
        sample = batch_of_windows(task, args.batch)
        hf, inputs = hf_model(model, sample, task.dictionary)

    def ours():
        loss, sample_size, _ = criterion(model, sample)
        return loss / sample_size

    def theirs():
        return hf(**inputs).loss

    model.eval(), hf.eval()
    with torch.no_grad():
        check = abs(float(ours()) - float(theirs()))
    model.train(), hf.train()
    tokens = sample["net_input"]["src_tokens"]
    print(benchlib.machine_line())
    print(benchlib.versions_line())
    print(f"batch {tuple(tokens.shape)} windows of MiniLM-L6 (imported); eval-mode loss difference {check:.2e}")
    times = benchlib.interleaved_times({"span_qa": stepper(model, ours), "HF": stepper(hf, theirs)},
                                       args.rounds, args.warmup)
    ratio, low, high = benchlib.paired_ratio(times["span_qa"], times["HF"])
    print("| side | median s/step | spread (IQR/median) |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {benchlib.median(values):.4f} | {benchlib.spread(values):.2f} |")
    verdict = "no slower" if ratio <= 1.0 else "slower"
    print(f"bench_finetune: span_qa / HF step time {ratio:.3f} (95% interval {low:.3f}-{high:.3f}, "
          f"{args.rounds} rounds): {verdict}")
    return ratio, check


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
