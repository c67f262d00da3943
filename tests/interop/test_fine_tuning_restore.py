"""spanbert-import's checkpoint restores into fairseq's sentence_prediction model as fairseq-train's
--restore-file loads it: the pretraining heads left out and the new head fresh, said in one line."""

import logging

import torch
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.patches import sentence_prediction_dictionary


def test_an_import_restores_into_sentence_prediction(imported_minilm, tmp_path, caplog):
    directory, _ = imported_minilm
    (tmp_path / "input0").mkdir()
    (tmp_path / "label").mkdir()
    (tmp_path / "input0" / "dict.txt").write_bytes((directory / "dict.txt").read_bytes())
    (tmp_path / "label" / "dict.txt").write_text("entailment 3\nnot_entailment 2\n")
    flags = (directory / "train_args.txt").read_text().split()
    flags = [f for i, f in enumerate(flags) if "pair-targets" not in f and "pair-targets" not in flags[i - 1]]
    argv = [str(tmp_path), "--task", "sentence_prediction", "--criterion", "sentence_prediction",
            "--num-classes", "2", *flags]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    sentence_prediction_dictionary.install()
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    assert isinstance(task.source_dictionary, BertDictionary)
    state = checkpoint_utils.load_checkpoint_to_cpu(str(directory / "model.pt"))
    with caplog.at_level(logging.INFO, logger="spanbert_fairseq.models.span_bert"):
        model.load_state_dict(state["model"], strict=True, model_cfg=cfg.model)  # as the trainer does
    (line,) = [r.getMessage() for r in caplog.records if r.name == "spanbert_fairseq.models.span_bert"]
    assert "pretraining heads (encoder.mlm_head, encoder.sbo_head: 15 tensors) left out of this model" in line
    assert "head 'sentence_classification_head' initialised fresh" in line
    key = "encoder.bert.encoder.layer.5.output.dense.weight"
    assert torch.equal(model.state_dict()[key], state["model"][key])
