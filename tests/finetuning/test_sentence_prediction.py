"""fairseq's stock sentence_prediction task and criterion on span_bert: BERT ids from input0/dict.txt,
a pretraining checkpoint restored with its heads left out, and one dev accuracy through
fairseq-validate and through the hub's predict."""

import os
import re
import subprocess

import pytest
import torch
import yaml
from fairseq.data import Dictionary
from fairseq.tasks.sentence_prediction import SentencePredictionTask

from spanbert_fairseq.checkpoint_io import safe_load
from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.hub.loading import from_pretrained
from spanbert_fairseq.interop.export_checkpoint import export_checkpoint
from spanbert_fairseq.patches import sentence_prediction_dictionary
from spanbert_fairseq.patches.wrapping import is_patched

from .conftest import BIN, REPO_ROOT, USER_DIR, init_token, run


def test_input0_dict_loads_with_bert_ids_and_label_dict_as_fairseq(glue_bin, tmp_path):
    stock = Dictionary.load(str(glue_bin / "input0" / "dict.txt"))  # what fairseq alone makes of it
    assert stock.index("[CLS]") == BertDictionary.load(str(glue_bin / "input0" / "dict.txt")).cls() + 4
    sentence_prediction_dictionary.install()
    assert is_patched(SentencePredictionTask, "load_dictionary")
    source = SentencePredictionTask.load_dictionary(str(glue_bin / "input0" / "dict.txt"))
    lines = (glue_bin / "input0" / "dict.txt").read_text(encoding="utf-8").splitlines()
    assert isinstance(source, BertDictionary) and source.symbols == [line.rsplit(" ", 1)[0] for line in lines]
    label = SentencePredictionTask.load_dictionary(str(glue_bin / "label" / "dict.txt"))
    assert not isinstance(label, BertDictionary) and label.nspecial == 4 and label.index("entailment") >= 4
    roberta_like = tmp_path / "dict.txt"
    roberta_like.write_text("13 850314647\n262 800385005\n11 800251374\n", encoding="utf-8")
    assert len(SentencePredictionTask.load_dictionary(str(roberta_like))) == 4 + 3 + 1  # fairseq's + <mask>


def test_restoring_a_pretraining_checkpoint_says_what_it_left_out_in_one_line(fine_tuned):
    save_dir, log = fine_tuned
    lines = [line for line in log.splitlines() if "loading span_bert weights" in line]
    assert len(lines) == 1, log[-3000:]
    assert ("pretraining heads (encoder.mlm_head, encoder.sbo_head: 15 tensors) left out of this model; "
            "head 'sentence_classification_head' initialised fresh (not in the checkpoint)") in lines[0]
    state = safe_load(save_dir / "checkpoint_best.pt")["model"]
    assert not any(k.startswith(("encoder.mlm_head.", "encoder.sbo_head.")) for k in state)
    assert state["classification_heads.sentence_classification_head.out_proj.weight"].shape == (2, 128)


def test_hub_predict_and_fairseq_validate_reach_the_same_dev_accuracy(fine_tuned, glue_bin, glue_task_dir):
    save_dir, _ = fine_tuned
    validate = run([BIN / "fairseq-validate", glue_bin, "--user-dir", USER_DIR, "--task", "sentence_prediction",
                    "--path", save_dir / "checkpoint_best.pt", "--criterion", "sentence_prediction",
                    "--num-classes", "2", "--init-token", init_token(glue_bin), "--batch-size", "16", "--cpu",
                    "--valid-subset", "valid"])
    validated = float(re.search(r"\| accuracy ([\d.]+) ", validate.stdout + validate.stderr).group(1))

    hub = from_pretrained(save_dir, "checkpoint_best.pt")
    labels = [line.rsplit(" ", 1)[0] for line in (glue_bin / "label" / "dict.txt").read_text().splitlines()]
    rows = [line.split("\t") for line in (glue_task_dir / "dev.tsv").read_text().splitlines()[1:]]
    correct = 0
    for _, first, second, label in rows:
        log_probs = hub.predict("sentence_classification_head", hub.encode(first, second))
        assert torch.allclose(log_probs.exp().sum(-1), torch.ones(1))
        correct += labels[int(log_probs.argmax(-1))] == label
    assert round(100.0 * correct / len(rows), 1) == validated
    assert validated >= 90.0  # learned: the rule needs the pair's segments (chance: 50)


def test_the_fine_tuned_checkpoint_exports_as_bert_for_sequence_classification(fine_tuned, glue_task_dir, tmp_path):
    transformers = pytest.importorskip("transformers")
    save_dir, _ = fine_tuned
    report = export_checkpoint(save_dir / "checkpoint_best.pt", tmp_path / "hf")  # vocabulary: the data's input0/
    assert report.architecture == "BertForSequenceClassification"
    hf = transformers.BertForSequenceClassification.from_pretrained(str(tmp_path / "hf")).eval()
    hub = from_pretrained(save_dir, "checkpoint_best.pt")
    for line in (glue_task_dir / "dev.tsv").read_text().splitlines()[1:4]:
        _, first, second, _ = line.split("\t")
        tokens = hub.encode(first, second)[None]
        with torch.no_grad():
            theirs = hf(input_ids=tokens, token_type_ids=hub.token_types(tokens)).logits
        torch.testing.assert_close(theirs, hub.predict("sentence_classification_head", tokens, return_logits=True),
                                   atol=1e-5, rtol=1e-4)


def test_the_hydra_config_builds_the_fine_tuning_model(glue_bin, pretrained_dir):
    """recipes/config/finetuning/glue.yaml through fairseq-hydra-train's own steps, up to the model."""
    from fairseq import tasks
    from fairseq.dataclass.configs import FairseqConfig
    from fairseq.dataclass.initialize import add_defaults
    from omegaconf import OmegaConf

    sentence_prediction_dictionary.install()
    config = yaml.safe_load((REPO_ROOT / "recipes" / "config" / "finetuning" / "glue.yaml").read_text())
    config.pop("hydra")
    cfg = OmegaConf.merge(OmegaConf.structured(FairseqConfig), config)
    cfg.task.data, cfg.task.num_classes, cfg.task.init_token = str(glue_bin), 2, init_token(glue_bin)
    cfg.checkpoint.restore_file, cfg.model._name = str(pretrained_dir / "checkpoint_last.pt"), "spanbert_tiny"
    add_defaults(cfg)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    assert isinstance(task.source_dictionary, BertDictionary)
    assert list(model.classification_heads) == ["sentence_classification_head"]
    assert model.encoder.mlm_head is None and model.cfg.encoder_layers == 2
    assert (cfg.dataset.batch_size, cfg.optimization.lr, cfg.optimization.max_epoch) == (32, [2e-5], 10)


@pytest.mark.slow
def test_finetune_glue_recipe_ends_with_its_summary_line(glue_task_dir, pretrained_dir, tmp_path):
    env = {"EPOCHS": "1", "PATH": f"{BIN}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", REPO_ROOT / "recipes" / "finetune_glue.sh", glue_task_dir, pretrained_dir,
                           tmp_path / "out"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"finetune_glue\.sh: RTE dev accuracy [\d.]+ \(best of 1 epochs, 5 updates\) from "
                        rf"{re.escape(str(pretrained_dir))}/checkpoint_\w+\.pt -> {re.escape(str(tmp_path))}/out/"
                        rf"checkpoints/checkpoint_best\.pt \(data .*\), \d+ s", last), last
    assert (tmp_path / "out" / "checkpoints" / "checkpoint_best.pt").is_file()
