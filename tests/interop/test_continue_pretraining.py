"""End to end: recipes/continue_pretrain.sh continues pretraining the real MiniLM on real prose
(import -> preprocess with its vocabulary -> fairseq-train --restore-file -> export), and the
loss falls."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "continue_pretrain.sh"
LOSS = re.compile(r"\| train_inner \|.* loss=([\d.]+), mlm_loss=([\d.]+), sbo_loss=([\d.]+)")
UPDATES = 12


def _write_corpus(path, documents):
    path.write_text("\n\n".join("\n".join(paragraphs) for paragraphs in documents) + "\n")
    return path


def _recipe_env(**settings):
    # One thread: on a shared CI machine, OpenMP threads spin-waiting for a core cost more than
    # they give on a model this small.
    env = dict(os.environ, OMP_NUM_THREADS="1", **{k: str(v) for k, v in settings.items()})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # this venv's tools
    return env


@pytest.mark.slow
def test_continued_pretraining_from_minilm_lowers_the_loss(minilm_dir, stdlib_documents, tmp_path):
    corpus = _write_corpus(tmp_path / "corpus.txt", stdlib_documents[:20])
    env = _recipe_env(MAX_UPDATE=UPDATES, WARMUP=0, LR="5e-4", BATCH_SIZE=4, TOKENS_PER_SAMPLE=64,
                      VALID_FRACTION=0.1)
    extra = ["--cpu", "--num-workers", "0", "--log-interval", "1", "--disable-validation",
             "--no-progress-bar"]
    run = subprocess.run(
        ["bash", str(RECIPE), str(minilm_dir), str(tmp_path / "run"), str(corpus), "--", *extra],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    output = run.stdout + run.stderr
    for step in ("+ spanbert-import", "+ spanbert-preprocess", "+ fairseq-train", "--restore-file",
                 "--reset-optimizer", "+ spanbert-export"):
        assert step in output, step
    assert run.stdout.strip().splitlines()[-1].startswith("continue_pretrain.sh: ")

    losses = [tuple(map(float, m.groups())) for m in LOSS.finditer(output)]
    assert len(losses) == UPDATES, output[-3000:]
    # Total, MLM and SBO each fall from the first update (fresh heads) to the last four. Single
    # batches of 4 x 64 tokens are noisy (their SBO/MLM target ratio varies), hence a mean at the end.
    for term in range(3):
        first, last = losses[0][term], [x[term] for x in losses[-4:]]
        assert sum(last) / len(last) < 0.85 * first, losses

    # The trained checkpoint exports, and transformers gives the hub's features.
    import transformers

    from spanbert_fairseq import SpanBertModel

    out = tmp_path / "run"
    bert = transformers.BertModel.from_pretrained(str(out / "hf"), add_pooling_layer=False).eval()
    trained = out / "checkpoints" / "checkpoint_last.pt"
    hub = SpanBertModel.from_pretrained(out / "model", checkpoint_file=str(trained))
    tokens = hub.encode("Continued pretraining adapts the encoder to the domain.")
    with torch.no_grad():
        assert (bert(tokens[None]).last_hidden_state - hub.extract_features(tokens)).abs().max() < 1e-5


def test_recipe_fails_fast_with_a_clear_message(minilm_dir, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cases = {
        (str(tmp_path / "nowhere"), str(tmp_path / "o"), str(empty)): "checkpoint not found",
        (str(minilm_dir), str(tmp_path / "o"), str(tmp_path / "missing.txt")): "text file not found",
        (str(minilm_dir), str(tmp_path / "o"), str(empty)): "text file is empty",
        (str(minilm_dir), str(tmp_path / "o")): "usage:",
    }
    for argv, message in cases.items():
        run = subprocess.run(["bash", str(RECIPE), *argv], env=_recipe_env(), capture_output=True,
                             text=True, timeout=60)
        status = 2 if message == "usage:" else 1  # a wrong command line, or an input to fix
        assert run.returncode == status and message in run.stderr, (argv, run.stderr)
        assert not (tmp_path / "o").exists()


def _tiny_vocabulary_data(directory, vocab_tokens):
    """dict.txt of another vocabulary and a few train/valid items, as spanbert-preprocess writes."""
    import numpy as np
    from fairseq.data import indexed_dataset

    directory.mkdir()
    (directory / "dict.txt").write_text("".join(f"{t} 1\n" for t in vocab_tokens))
    rng = np.random.default_rng(0)
    for split in ("train", "valid"):
        builder = indexed_dataset.MMapIndexedDatasetBuilder(str(directory / f"{split}.bin"), dtype=np.uint16)
        for _ in range(8):  # lines of ids in the ordinary range, each ending with [SEP] (id 3)
            builder.add_item(torch.from_numpy(np.append(rng.integers(5, len(vocab_tokens), 20), 3)))
        builder.finalize(str(directory / f"{split}.idx"))
    return directory


@pytest.mark.slow
def test_restoring_onto_data_of_another_vocabulary_names_both_sizes(imported_minilm, tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(95)]
    data = _tiny_vocabulary_data(tmp_path / "data", vocab)
    model_dir = imported_minilm[0]
    run = subprocess.run(
        [str(Path(sys.executable).parent / "fairseq-train"), str(data),
         "--user-dir", str(REPO / "spanbert_fairseq"), "--task", "span_bert", "--criterion", "span_bert",
         *(model_dir / "train_args.txt").read_text().split(),
         "--restore-file", str(model_dir / "model.pt"), "--reset-optimizer", "--reset-dataloader",
         "--reset-meters", "--reset-lr-scheduler", "--optimizer", "adam", "--lr", "1e-4",
         "--batch-size", "2", "--tokens-per-sample", "32", "--max-update", "1", "--cpu",
         "--save-dir", str(tmp_path / "checkpoints"), "--no-save"],
        env=_recipe_env(), capture_output=True, text=True, timeout=180,
    )
    assert run.returncode != 0
    assert ("vocabulary mismatch: the checkpoint was trained with 30522 vocabulary entries but the "
            "data's dict.txt has 100") in run.stderr, run.stderr[-3000:]
    assert "size mismatch for" not in run.stderr  # the cause, not one line per tensor
