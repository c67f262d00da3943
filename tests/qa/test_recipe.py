"""recipes/finetune_squad.sh end to end on the synthetic span task, and the hydra config."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import qa_synthetic as synthetic
import torch
import yaml
from fairseq import tasks
from fairseq.dataclass.configs import FairseqConfig
from fairseq.dataclass.initialize import add_defaults
from omegaconf import OmegaConf

from spanbert_text.vocabulary import Vocabulary

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_DIR = str(REPO_ROOT / "spanbert_fairseq")


@pytest.fixture(scope="module")
def pretrained(vocabulary_dirs, tmp_path_factory):
    """A spanbert_tiny pretraining checkpoint (random weights, MLM and SBO heads) with its vocabulary,
    as spanbert-import lays one out: model.pt beside dict.txt."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    from spanbert_fairseq.interop.span_bert_checkpoint import save_checkpoint

    out = tmp_path_factory.mktemp("pretrained")
    for f in vocabulary_dirs["wordpiece-cased"].iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    (out / "train.idx").touch()
    argv = [str(out), "--user-dir", USER_DIR, "--task", "span_bert", "--criterion", "span_bert",
            "--arch", "spanbert_tiny"]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    torch.manual_seed(0)
    model = tasks.setup_task(cfg.task).build_model(cfg.model)
    assert model.encoder.mlm_head is not None
    save_checkpoint(out / "model.pt", cfg, model.state_dict(), carried={})
    (out / "train.idx").unlink()
    return out


@pytest.mark.slow
def test_finetune_squad_writes_checkpoints_predictions_and_scores(pretrained, tmp_path):
    vocabulary = Vocabulary.load(pretrained / "dict.txt")
    train = synthetic.write(tmp_path / "train-v1.1.json", synthetic.likes_task(vocabulary, 200, seed=1))
    dev = synthetic.write(tmp_path / "dev-v1.1.json", synthetic.likes_task(vocabulary, 40, seed=2))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
           "EPOCHS": "2", "BATCH": "16", "MAX_LEN": "48", "STRIDE": "16", "LR": "2e-3", "NUM_WORKERS": "0"}
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(REPO_ROOT / "recipes" / "finetune_squad.sh"), str(pretrained), str(train),
                           str(dev), str(out), "--", "--dropout", "0.0", "--attention-dropout", "0.0"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert (out / "checkpoints" / "checkpoint_best.pt").is_file()
    predictions = json.loads((out / "predictions.json").read_text())
    summary = json.loads((out / "eval.json").read_text())
    assert len(predictions) == 40 and summary["total"] == 40
    assert summary["f1"] >= 90.0
    assert "pretraining heads (encoder.mlm_head, encoder.sbo_head" in proc.stdout + proc.stderr
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    assert last.startswith("finetune_squad.sh: dev exact_match ") and f"in {out}" in last


def test_finetune_squad_refuses_a_missing_file(pretrained, tmp_path):
    proc = subprocess.run(["bash", str(REPO_ROOT / "recipes" / "finetune_squad.sh"), str(pretrained),
                           str(tmp_path / "train.json"), str(tmp_path / "dev.json")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"finetune_squad.sh: error: SQuAD file not found: {tmp_path / 'train.json'}"


def test_the_hydra_config_builds_the_span_qa_task(tmp_path, vocabulary_dirs):
    cfg = OmegaConf.structured(FairseqConfig)
    with open(REPO_ROOT / "recipes" / "config" / "finetuning" / "squad.yaml") as f:
        squad = yaml.safe_load(f)
    squad.pop("hydra")
    cfg = OmegaConf.merge(cfg, squad)
    cfg.task.data, cfg.common.user_dir = str(vocabulary_dirs["wordpiece-cased"]), USER_DIR
    add_defaults(cfg)
    assert cfg.task.max_seq_length == 512 and cfg.task.doc_stride == 128 and cfg.dataset.batch_size == 32
    assert cfg.optimization.lr == [2e-05] and cfg.optimization.max_epoch == 4
    task = tasks.setup_task(cfg.task)
    assert type(task).__name__ == "SpanQATask" and task.params.max_query_length == 64
