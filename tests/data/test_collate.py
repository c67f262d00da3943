"""The collater: docs/DESIGN.md's batch contract, including the edge cases of K."""

import torch

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
    assert net["pairs"].tolist() == [[[1, 4]], [[0, 0]]]
    assert batch["pair_targets"].tolist() == [[[8, 8, PAD]], [[PAD, PAD, PAD]]]
    assert all(t.dtype == torch.long for t in (net["src_tokens"], net["pairs"], batch["target"]))


def test_no_pairs_anywhere_keeps_one_padding_row():
    batch = collate_span_batch([item(0, [5], [5], [], [])], PAD, CLS, SEP, 3)
    assert batch["net_input"]["pairs"].shape == (1, 1, 2)
    assert batch["pair_targets"].tolist() == [[[PAD, PAD, PAD]]]


def test_empty_batch():
    assert collate_span_batch([], PAD, CLS, SEP, 3) == {}
