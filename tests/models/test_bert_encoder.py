"""The encoder's fast paths compute HF BertModel's function: values and every gradient, in float64.

tests/models/test_span_bert_model.py and tests/interop compare outputs in eval mode at float32
tolerances; here the training computation (no dropout, so it is deterministic) is compared with
HF's unfused one, gradient by gradient, tightly enough that a misplaced weight or bias shows.
"""

import pytest
import torch

from spanbert_fairseq.data.head_rows import head_rows
from spanbert_fairseq.models.bert_encoder import BertBody, gather_positions

PAD = 0
SIZES = dict(num_layers=2, dim=32, ffn_dim=64, num_heads=4)


def tokens_with_padding(lengths, vocab_size, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.full((len(lengths), max(lengths)), PAD)
    for i, n in enumerate(lengths):
        tokens[i, :n] = torch.randint(1, vocab_size, (n,), generator=g)
    return tokens


def body(vocab_size=50, dropout=0.0):
    torch.manual_seed(0)
    model = BertBody(vocab_size=vocab_size, padding_idx=PAD, max_positions=64, type_vocab_size=2, eps=1e-12,
                     dropout=dropout, attention_dropout=dropout, **SIZES)
    with torch.no_grad():  # non-trivial LayerNorms and biases, so a swapped weight/bias would show
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.normal_(mean=1.0 if name.endswith("LayerNorm.weight") else 0.0, std=0.1)
    return model.double().train()


def test_training_values_and_gradients_equal_huggingface_bert():
    transformers = pytest.importorskip("transformers")
    ours = body()
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=SIZES["dim"], num_hidden_layers=SIZES["num_layers"],
        num_attention_heads=SIZES["num_heads"], intermediate_size=SIZES["ffn_dim"], max_position_embeddings=64,
        pad_token_id=PAD, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12,
    )
    hf = transformers.BertModel(config, add_pooling_layer=False).double().train()
    missing, unexpected = hf.load_state_dict(ours.state_dict(), strict=False)
    assert not missing and not unexpected

    tokens = tokens_with_padding([19, 12, 7], 50)
    is_token = tokens.ne(PAD)
    upstream = torch.randn(*tokens.shape, SIZES["dim"], dtype=torch.float64) * is_token.unsqueeze(-1)
    actual = ours(tokens, ours.attention_mask(tokens))
    expected = hf(input_ids=tokens, attention_mask=is_token.long()).last_hidden_state
    torch.testing.assert_close(actual[is_token], expected[is_token], rtol=1e-10, atol=1e-10)

    (actual * upstream).sum().backward()
    (expected * upstream).sum().backward()
    hf_params = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, hf_params[name].grad, rtol=1e-9, atol=1e-10, msg=name)


def test_last_layer_at_selected_positions_equals_the_full_output_and_its_gradients():
    full, pruned = body(), body()
    tokens = tokens_with_padding([19, 12, 7], 50, seed=1)
    mask = full.attention_mask(tokens)
    B, T = tokens.shape
    target = torch.full_like(tokens, PAD)
    target[0, [3, 5, 6]] = target[1, 11] = 7  # MLM targets; SBO boundaries overlap them (0,6), (1,11)
    pairs = torch.tensor([[[6, 5]], [[11, 11]], [[0, 6]]])  # B x 1 x 2
    pair_targets = torch.full((B, 1, 2), PAD)
    pair_targets[:, 0, 0] = 7
    rows = head_rows(tokens, target, PAD, pairs, pair_targets)
    assert rows.positions.shape == (B, 3)
    # Flat rows of B*T the heads read: MLM targets, then each SBO target's left and right boundary.
    flat = torch.tensor([3, 5, 6, T + 11, 6, T + 11, 2 * T + 0, 5, T + 11, 2 * T + 6])
    out_rows = torch.cat([rows.mlm_rows, rows.sbo_rows[:, 0], rows.sbo_rows[:, 1]])

    expected = full(tokens, mask).flatten(0, 1)[flat]
    actual = pruned(tokens, mask, rows.positions).flatten(0, 1)[out_rows]
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)

    upstream = torch.randn_like(expected)
    (expected * upstream).sum().backward()
    (actual * upstream).sum().backward()
    pruned_params = dict(pruned.named_parameters())
    for name, p in full.named_parameters():
        torch.testing.assert_close(pruned_params[name].grad, p.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_gather_positions():
    x = torch.arange(2 * 5 * 3).view(2, 5, 3)
    rows = torch.tensor([[4, 0], [1, 1]])
    assert torch.equal(gather_positions(x, rows), torch.stack([x[0, [4, 0]], x[1, [1, 1]]]))
