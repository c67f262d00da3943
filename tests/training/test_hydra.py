"""fairseq's hydra front end builds exactly what fairseq-train --arch builds, and the shipped
configs train end to end."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from fairseq import options, tasks
from fairseq.dataclass.configs import FairseqConfig
from fairseq.dataclass.initialize import add_defaults
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from omegaconf import OmegaConf

from spanbert_fairseq.models.span_bert import ARCHITECTURE_SIZES

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "recipes" / "config" / "pretraining"
USER_DIR = str(REPO_ROOT / "spanbert_fairseq")


def argparse_model(data_dir, arch, *flags):
    """The model `fairseq-train DATA --arch ARCH FLAGS` builds."""
    argv = [str(data_dir), "--user-dir", USER_DIR, "--task", "span_bert", "--criterion", "span_bert",
            "--arch", arch, *flags]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    return tasks.setup_task(cfg.task).build_model(cfg.model)


def hydra_model(data_dir, model_node):
    """The model `fairseq-hydra-train` builds from a config whose model group is `model_node`, by
    fairseq_cli/hydra_train.py's own steps: the structured config, add_defaults, resolve, struct."""
    cfg = OmegaConf.structured(FairseqConfig)
    with open(CONFIG_DIR / "demo.yaml") as f:
        demo = yaml.safe_load(f)
    demo.pop("hydra")  # Hydra's own settings, which Hydra consumes before fairseq sees the config
    cfg = OmegaConf.merge(cfg, demo)
    cfg.task.data, cfg.common.user_dir, cfg.model = str(data_dir), USER_DIR, model_node
    add_defaults(cfg)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    OmegaConf.set_struct(cfg, True)
    return tasks.setup_task(cfg.task).build_model(cfg.model)


def model_fields(model):
    return {k: v for k, v in OmegaConf.to_container(OmegaConf.create(dict(model.cfg))).items() if k != "_name"}


def parameters(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", sorted(ARCHITECTURE_SIZES))
def test_each_architecture_is_the_same_model_under_both_front_ends(tiny_data_dir, arch):
    torch.manual_seed(0)
    by_flag = argparse_model(tiny_data_dir, arch)
    by_hydra = hydra_model(tiny_data_dir, {"_name": arch})
    assert model_fields(by_hydra) == model_fields(by_flag)
    assert parameters(by_hydra) == parameters(by_flag)
    sizes = {name: getattr(by_hydra.cfg, name) for name in ARCHITECTURE_SIZES[arch]}
    assert sizes == ARCHITECTURE_SIZES[arch]
    assert len(by_hydra.encoder.bert.encoder.layer) == ARCHITECTURE_SIZES[arch]["encoder_layers"]


def test_the_bare_model_name_is_base(tiny_data_dir):
    model = hydra_model(tiny_data_dir, {"_name": "span_bert"})
    assert {name: getattr(model.cfg, name) for name in ARCHITECTURE_SIZES["spanbert_base"]} == \
        ARCHITECTURE_SIZES["spanbert_base"]


def test_an_override_in_the_config_wins_over_the_architecture(tiny_data_dir):
    by_hydra = hydra_model(tiny_data_dir, {"_name": "spanbert_large", "encoder_layers": 6})
    by_flag = argparse_model(tiny_data_dir, "spanbert_large", "--encoder-layers", "6")
    assert by_hydra.cfg.encoder_layers == 6 and by_hydra.cfg.encoder_embed_dim == 1024
    assert model_fields(by_hydra) == model_fields(by_flag) and parameters(by_hydra) == parameters(by_flag)


def test_max_pair_targets_has_one_source(tiny_data_dir):
    """The model's SBO position table follows the task's --max-pair-targets under both front ends."""
    by_flag = argparse_model(tiny_data_dir, "spanbert_tiny", "--max-pair-targets", "7")
    assert by_flag.cfg.max_pair_targets == 7
    assert by_flag.encoder.sbo_head.position_embeddings.num_embeddings == 7


@pytest.mark.slow
def test_the_demo_config_trains_end_to_end(tiny_data_dir, tmp_path):
    command = [
        str(Path(sys.executable).parent / "fairseq-hydra-train"), "--config-dir", str(CONFIG_DIR),
        "--config-name", "demo", f"task.data={tiny_data_dir}", f"common.user_dir={USER_DIR}",
        f"checkpoint.save_dir={tmp_path / 'checkpoints'}", "optimization.max_update=4",
        "task.tokens_per_sample=32", "dataset.batch_size=4", f"hydra.run.dir={tmp_path / 'hydra'}",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    state = torch.load(tmp_path / "checkpoints" / "checkpoint_last.pt", weights_only=True)
    assert state["optimizer_history"][-1]["num_updates"] == 4
    tiny, model_cfg = ARCHITECTURE_SIZES["spanbert_tiny"], state["cfg"]["model"]
    assert {name: model_cfg[name] for name in tiny} == tiny
