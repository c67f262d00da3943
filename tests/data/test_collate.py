"""The collater: docs/DESIGN.md's batch contract, including the edge cases of K, and the head rows
(data/head_rows.py) it carries, checked against hand-worked values and a slow per-target walk."""

import torch

from spanbert_fairseq.data.head_rows import head_rows
from spanbert_fairseq.data.span_masked_dataset import collate_span_batch

PAD, CLS, SEP, MASK = 0, 101, 102, 103


def item(i, source, target, pairs, pair_targets):
    return {
        "id": i,
        "source": torch.tensor(source),
        "target": torch.tensor(target),
        "pairs": torch.tensor(pairs, dtype=torch.long).reshape(-1, 2),
        "pair_targets": torch.tensor(pair_targets, dtype=torch.long).reshape(-1, 3),
    }


def test_rows_pairs_and_padding():
    a = item(4, [7, MASK, MASK, 9, 10], [0, 8, 8, 0, 0], [[0, 3]], [[8, 8, PAD]])
    b = item(9, [5, 6], [5, 0], [], [])
    batch = collate_span_batch([a, b], PAD, CLS, SEP, 3)
    assert batch["id"].tolist() == [4, 9] and batch["nsentences"] == 2 and batch["ntokens"] == 7 + 4
    net = batch["net_input"]
    assert net["src_tokens"].tolist() == [[CLS, 7, MASK, MASK, 9, 10, SEP], [CLS, 5, 6, SEP, PAD, PAD, PAD]]
    assert net["src_lengths"].tolist() == [7, 4]
    assert batch["target"].tolist() == [[PAD, 0, 8, 8, 0, 0, PAD], [PAD, 5, 0, PAD, PAD, PAD, PAD]]
    # Pairs move by +1 into src_tokens positions; row b has none: a padding row of zeros / pads.
    assert batch["pairs"].tolist() == [[[1, 4]], [[0, 0]]]
    assert batch["pair_targets"].tolist() == [[[8, 8, PAD]], [[PAD, PAD, PAD]]]
    assert all(t.dtype == torch.long for t in (net["src_tokens"], batch["pairs"], batch["target"]))

    # Worked by hand. Row a needs MLM targets 2, 3 and SBO boundaries 1, 4; row b its target 1.
    # R = 4; b's row is padded with its unneeded positions in order.
    assert net["padded"] is True
    assert net["positions"].tolist() == [[1, 2, 3, 4], [1, 0, 2, 3]]
    assert net["mlm_rows"].tolist() == [1, 2, 4] and batch["mlm_targets"].tolist() == [8, 8, 5]
    assert net["sbo_rows"].tolist() == [[0, 3, 0], [0, 3, 1]] and batch["sbo_targets"].tolist() == [8, 8]
    assert all(t.dtype == torch.long for t in (net["positions"], net["mlm_rows"], net["sbo_rows"]))


def test_no_pairs_anywhere_keeps_one_padding_row():
    batch = collate_span_batch([item(0, [5], [5], [], [])], PAD, CLS, SEP, 3)
    assert batch["pairs"].shape == (1, 1, 2)
    assert batch["pair_targets"].tolist() == [[[PAD, PAD, PAD]]]
    net = batch["net_input"]
    assert net["padded"] is False  # one row: nothing shorter than T
    assert net["positions"].tolist() == [[1]] and net["mlm_rows"].tolist() == [0]
    assert net["sbo_rows"].shape == (0, 3) and batch["sbo_targets"].shape == (0,)


def test_no_targets_at_all_still_gives_one_position_per_row():
    batch = collate_span_batch([item(0, [5, 6], [PAD, PAD], [], []), item(1, [7], [PAD], [], [])], PAD, CLS, SEP, 3)
    net = batch["net_input"]
    assert net["positions"].tolist() == [[0], [0]]  # R >= 1, so the last layer still has a query
    assert net["mlm_rows"].shape == (0,) and net["sbo_rows"].shape == (0, 3)


def test_head_rows_point_at_every_target_in_row_major_order():
    g = torch.Generator().manual_seed(3)
    B, T, K, P = 5, 23, 4, 6
    src = torch.randint(1, 50, (B, T), generator=g)
    src[3, 17:] = PAD
    target = torch.where(torch.rand(B, T, generator=g) < 0.2, src, PAD)
    pairs = torch.randint(0, T, (B, K, 2), generator=g)
    pair_targets = torch.where(torch.rand(B, K, P, generator=g) < 0.4, torch.randint(1, 50, (B, K, P), generator=g),
                               PAD)
    rows = head_rows(src, target, PAD, pairs, pair_targets)
    R = rows.positions.size(1)
    flat_positions = rows.positions.flatten().tolist()

    def sample_and_position(row):
        return row // R, flat_positions[row]

    expected_mlm = [(b, t) for b in range(B) for t in range(T) if target[b, t] != PAD]
    assert [sample_and_position(r) for r in rows.mlm_rows.tolist()] == expected_mlm
    assert rows.mlm_targets.tolist() == [int(target[b, t]) for b, t in expected_mlm]
    expected_sbo = [(b, k, i) for b in range(B) for k in range(K) for i in range(P) if pair_targets[b, k, i] != PAD]
    assert len(rows.sbo_rows) == len(expected_sbo)
    for (left, right, index), (b, k, i) in zip(rows.sbo_rows.tolist(), expected_sbo):
        assert sample_and_position(left) == (b, int(pairs[b, k, 0]))
        assert sample_and_position(right) == (b, int(pairs[b, k, 1]))
        assert index == i
    assert rows.sbo_targets.tolist() == [int(pair_targets[b, k, i]) for b, k, i in expected_sbo]
    # Each row: its needed positions first, increasing, then the others; R = the most any row needs.
    needed = [sorted({t for bb, t in expected_mlm if bb == b}
                     | {int(pairs[b, k, j]) for bb, k, _ in expected_sbo if bb == b for j in (0, 1)}) for b in range(B)]
    assert R == max(len(n) for n in needed)
    for b in range(B):
        rest = [t for t in range(T) if t not in needed[b]]
        assert rows.positions[b].tolist() == (needed[b] + rest)[:R]
    assert rows.padded is True


def test_empty_batch():
    assert collate_span_batch([], PAD, CLS, SEP, 3) == {}
