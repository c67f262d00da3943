"""The span_bert task from fairseq's own CLI parser: loading, batches, shards, determinism, errors."""

import logging
import math
import os
import shutil
from fractions import Fraction

import numpy as np
import pytest
import torch
from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

import spanbert_fairseq
from spanbert_fairseq.data.binaries import BinaryDataError, TokenFile
from spanbert_text.errors import UserInputError

USER_DIR = os.path.dirname(spanbert_fairseq.__file__)


def make_cfg(data, *flags):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser, [str(data), "--user-dir", USER_DIR, "--task", "span_bert", "--arch", "spanbert_tiny",
                 "--max-tokens", "4096", *flags]
    )
    return convert_namespace_to_omegaconf(args)


def make_task(data, *flags):
    cfg = make_cfg(data, *flags)
    return tasks.setup_task(cfg.task), cfg


def batches(task, split="train", epoch=1, num_shards=1, shard_id=0, max_tokens=4096, num_workers=0):
    iterator = task.get_batch_iterator(
        task.dataset(split), max_tokens=max_tokens, max_positions=task.max_positions(), seed=1,
        num_shards=num_shards, shard_id=shard_id, epoch=epoch, disable_iterator_cache=True,
        num_workers=num_workers,
    )
    out = list(iterator.next_epoch_itr(shuffle=True))
    close_workers(iterator)
    return out


def close_workers(epoch_itr):
    """Stop a reused DataLoader's persistent workers now; left to garbage collection it takes ~10 s."""
    loader = getattr(epoch_itr, "dataloader", None)
    if loader is not None and getattr(loader, "_iterator", None) is not None:
        loader._iterator._shutdown_workers()


def check_batch_contract(batch, d, max_pair_targets=15):
    src, tgt = batch["net_input"]["src_tokens"], batch["target"]
    pairs, pair_targets = batch["pairs"], batch["pair_targets"]
    lengths = batch["net_input"]["src_lengths"]
    bsz, width = src.shape
    assert tgt.shape == src.shape and lengths.shape == (bsz,)
    assert pairs.shape[:2] == pair_targets.shape[:2] and pairs.shape[2] == 2
    assert pair_targets.shape[2] == max_pair_targets
    assert batch["nsentences"] == bsz and batch["ntokens"] == int((src != d.pad()).sum())
    assert int(lengths.max()) == width
    for row in range(bsz):
        n = int(lengths[row])
        assert src[row, 0] == d.cls() and src[row, n - 1] == d.sep()
        assert (src[row, n:] == d.pad()).all() and (tgt[row, n:] == d.pad()).all()
        assert tgt[row, 0] == d.pad() and tgt[row, n - 1] == d.pad()
        masked = tgt[row] != d.pad()
        real = pair_targets[row, :, 0] != d.pad()
        for (left, right), targets in zip(pairs[row][real].tolist(), pair_targets[row][real]):
            # Boundaries are unmasked block tokens (not [CLS]/[SEP]); between them, one merged span.
            assert 1 <= left and right <= n - 2 and right - left >= 2
            assert not masked[left] and not masked[right] and masked[left + 1 : right].all()
            span = tgt[row, left + 1 : right][:max_pair_targets]
            assert torch.equal(targets[: len(span)], span)
            assert (targets[len(span) :] == d.pad()).all()
        assert (pairs[row][~real] == 0).all() and (pair_targets[row][~real] == d.pad()).all()
        # Every merged span away from the block edges has its SBO row.
        runs = np.flatnonzero(np.diff(np.concatenate([[0], masked.numpy().astype(int), [0]])) == 1)
        inner = [s for s in runs if s > 1 and not masked[s - 1] and src[row, s - 1] != d.cls()]
        assert int(real.sum()) == sum(
            1 for s in inner if s < n - 1 and (~masked[s:n - 1]).any()
        )


def test_cli_task_loads_and_batches_follow_the_contract(task_data_dir, caplog):
    with caplog.at_level(logging.INFO, logger="spanbert_fairseq.tasks.span_bert"):
        task, cfg = make_task(task_data_dir)
        task.load_dataset("train")
        task.load_dataset("valid")
    lines = [r.getMessage() for r in caplog.records if " blocks, " in r.getMessage()]
    assert len(lines) == 2 and lines[0].startswith("train ") and "documents" in lines[0]
    assert "lines longer than a block split" in lines[0] and "skipped" in lines[0]
    assert cfg.task.seed == cfg.common.seed
    d = task.source_dictionary
    assert (d.cls(), d.sep(), d.pad(), d.mask()) == (101, 102, 0, 103)
    train = batches(task, max_tokens=2048)
    assert sum(len(b["id"]) for b in train) == len(task.dataset("train"))
    for batch in train:
        check_batch_contract(batch, d)
        assert batch["net_input"]["src_tokens"].numel() <= 2048  # [CLS] and [SEP] count
    assert all(b["net_input"]["src_tokens"].shape[1] <= 512 for b in train)


def test_flags_reach_the_masker(task_data_dir):
    task, _ = make_task(task_data_dir, "--tokens-per-sample", "130", "--mask-ratio", "0.3", "--max-pair-targets",
                        "4", "--masking-scheme", "subword", "--replacement-method", "word_piece",
                        "--random-token-source", "uniform", "--geometric-p", "0.5", "--span-lower", "2",
                        "--span-upper", "4")
    assert task.masker.params.geometric_p == 0.5 and task.masker.params.span_upper == 4
    task.load_dataset("valid")
    d = task.source_dictionary
    for batch in batches(task, "valid"):
        check_batch_contract(batch, d, max_pair_targets=4)
        assert batch["net_input"]["src_tokens"].shape[1] <= 130
        lengths = (batch["net_input"]["src_lengths"] - 2).tolist()
        masked = (batch["target"] != d.pad()).sum(1).tolist()
        assert masked == [math.ceil(Fraction(3, 10) * n) for n in lengths]


def test_masks_are_independent_of_world_size_workers_and_change_each_epoch(task_data_dir):
    task, _ = make_task(task_data_dir)
    task.load_dataset("train")

    def rows_by_id(batch_list):
        out = {}
        for b in batch_list:
            if not b:  # shards are evened out with empty batches
                continue
            for row, i in enumerate(b["id"].tolist()):
                n = int(b["net_input"]["src_lengths"][row])
                out[i] = (b["net_input"]["src_tokens"][row, :n].clone(), b["target"][row, :n].clone())
        return out

    single = rows_by_id(batches(task, epoch=1))
    sharded = {}
    for shard in range(3):
        sharded.update(rows_by_id(batches(task, epoch=1, num_shards=3, shard_id=shard, max_tokens=1024)))
    assert sharded.keys() == single.keys()
    for i in single:
        assert torch.equal(single[i][0], sharded[i][0]) and torch.equal(single[i][1], sharded[i][1])
    # A fresh run (a resume), with data-loader workers: same masks.
    again = rows_by_id(batches(make_and_load(task_data_dir), epoch=1, num_workers=2))
    assert all(torch.equal(single[i][1], again[i][1]) for i in single)
    epoch2 = rows_by_id(batches(task, epoch=2))
    changed = sum(not torch.equal(single[i][1], epoch2[i][1]) for i in single)
    assert changed == len(single)


def make_and_load(data, *flags):
    task, _ = make_task(data, *flags)
    task.load_dataset("train")
    return task


def test_shards_are_read_round_robin_by_epoch(sharded_data_dir):
    data = f"{sharded_data_dir / 'shard0'}:{sharded_data_dir / 'shard1'}"
    task, _ = make_task(data)
    assert task.has_sharded_data("train")
    sizes = {}
    for epoch in (1, 2, 3):
        task.load_dataset("train", epoch=epoch)
        sizes[epoch] = int(task.dataset("train").sizes.sum())
    assert sizes[1] == sizes[3] != sizes[2]
    task.load_dataset("valid", epoch=1)
    with pytest.raises(UserInputError, match=r"split 'valid' not found: missing .*shard1/valid\.idx"):
        task.load_dataset("valid", epoch=2)


def test_missing_split_and_mismatched_dict_through_the_task(task_data_dir, tmp_path):
    for name in ("dict.txt", "train.bin", "train.idx"):
        shutil.copy(task_data_dir / name, tmp_path / name)
    task, _ = make_task(tmp_path)
    with pytest.raises(UserInputError, match=rf"split 'valid' not found: missing {tmp_path}/valid\.idx"):
        task.load_dataset("valid")
    lines = (tmp_path / "dict.txt").read_text().split("\n")[:1000]
    (tmp_path / "dict.txt").write_text("\n".join(lines) + "\n")
    task, _ = make_task(tmp_path)
    with pytest.raises(BinaryDataError, match=r"dict\.txt \(1000 entries\): .*dict\.txt does not match"):
        task.load_dataset("train")


def test_only_document_boundaries_is_an_error(tmp_path, task_data_dir):
    from fairseq.data.indexed_dataset import MMapIndexedDatasetBuilder

    shutil.copy(task_data_dir / "dict.txt", tmp_path / "dict.txt")
    builder = MMapIndexedDatasetBuilder(str(tmp_path / "train.bin"), dtype=np.uint16)
    for _ in range(3):
        builder.add_item(torch.tensor([102]))
    builder.finalize(str(tmp_path / "train.idx"))
    task, _ = make_task(tmp_path)
    with pytest.raises(ValueError, match=r"train: no text, only document boundaries \(3 lines\)"):
        task.load_dataset("train")


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--span-upper", "2", "--span-lower", "3"], r"--span-upper \(2\) must not be below --span-lower \(3\)"),
        (["--geometric-p", "0"], r"--geometric-p must lie in \(0, 1\]"),
        (["--geometric-p", "1.2"], r"--geometric-p must lie in \(0, 1\]"),
        (["--mask-ratio", "1"], r"--mask-ratio must lie in \(0, 1\)"),
        (["--mask-ratio", "-0.1"], r"--mask-ratio must lie in \(0, 1\)"),
        (["--max-pair-targets", "0"], r"--max-pair-targets must be at least 1"),
        (["--tokens-per-sample", "2"], r"--tokens-per-sample must be at least 3"),
    ],
)
def test_bad_options_fail_at_setup_naming_the_flag(task_data_dir, flags, message):
    with pytest.raises(ValueError, match=message):
        make_task(task_data_dir, *flags)


def test_tokens_per_sample_beyond_the_model_positions(task_data_dir):
    task, cfg = make_task(task_data_dir, "--tokens-per-sample", "1024")
    with pytest.raises(ValueError, match=r"--tokens-per-sample 1024 exceeds the model's 512 positions"):
        task.build_model(cfg.model)
    task, cfg = make_task(task_data_dir, "--tokens-per-sample", "512")
    assert task.build_model(cfg.model).max_positions() == 512


def test_setup_without_dict_names_the_file(tmp_path):
    with pytest.raises(UserInputError, match=rf"vocabulary file not found: {tmp_path}/dict.txt"):
        make_task(tmp_path)


def test_fairseq_preprocess_with_the_task_writes_bert_ids(task_data_dir, tmp_path, bert_vocab, stdlib_documents):
    """fairseq-preprocess --task span_bert --srcdict dict.txt: BERT ids, the format the task reads."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(str(bert_vocab), lowercase=True)
    lines = [line for doc in stdlib_documents[:3] for line in doc[:4]]
    pieces = [tokenizer.encode(line, add_special_tokens=False) for line in lines]
    (tmp_path / "train.txt").write_text("\n".join(" ".join(p.tokens) for p in pieces) + "\n")
    from fairseq_cli import preprocess

    args = options.get_preprocessing_parser().parse_args(
        ["--only-source", "--srcdict", str(task_data_dir / "dict.txt"), "--trainpref", str(tmp_path / "train.txt"),
         "--destdir", str(tmp_path / "bin"), "--dataset-impl", "mmap", "--user-dir", USER_DIR, "--task", "span_bert",
         "--workers", "1"]
    )
    preprocess.main(args)
    tokens = TokenFile(str(tmp_path / "bin" / "train"))
    expected = np.concatenate([np.append(p.ids, 102) for p in pieces])
    assert np.array_equal(np.asarray(tokens.tokens), expected)


def test_dataset_pickles_for_spawned_workers(task_data_dir):
    """Spawned data-loader workers (macOS, Windows) receive the dataset pickled: same items there."""
    import pickle

    task = make_and_load(task_data_dir)
    dataset = task.dataset("train")
    dataset.set_epoch(3)
    payload = pickle.dumps(dataset)
    assert len(payload) < 1_000_000  # the .bin travels as its path
    clone = pickle.loads(payload)
    for i in (0, 7, len(dataset) - 1):
        a, b = dataset[i], clone[i]
        assert all(torch.equal(a[k], b[k]) for k in ("source", "target", "pairs", "pair_targets"))


def test_epochs_as_fairseq_train_runs_them_give_new_masks(task_data_dir):
    """fairseq-train asks the task for an iterator each epoch and fairseq 0.12 reuses one DataLoader
    with persistent workers: the workers' copies of the dataset must still see each new epoch."""
    task = make_and_load(task_data_dir)
    dataset = task.dataset("train")
    epoch_itr = task.get_batch_iterator(dataset, max_tokens=4096, seed=1, num_workers=2, epoch=1)
    targets = {}
    for _ in range(3):
        epoch = epoch_itr.next_epoch_idx
        epoch_itr = task.get_batch_iterator(dataset, max_tokens=4096, seed=1, num_workers=2, epoch=epoch)
        for batch in epoch_itr.next_epoch_itr(shuffle=True):
            for row, i in enumerate(batch["id"].tolist()):
                targets[epoch, i] = batch["target"][row].clone()
    close_workers(epoch_itr)
    reference = task.masker
    for epoch in (1, 2, 3):
        for i in (0, 11, 50):
            block = dataset.dataset.dataset[i]
            expected = reference.mask_block(block, task.cfg.seed, epoch, i).target
            n = len(expected)
            assert torch.equal(targets[epoch, i][1 : n + 1], expected), (epoch, i)
