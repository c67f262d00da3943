"""Issue 6 rows owned by the data pipeline: bad binaries, bad masking options, degenerate blocks."""

import shutil

import numpy as np
import pytest

from spanbert_fairseq.data.binaries import BinaryDataError, TokenFile
from spanbert_fairseq.data.span_masking import MaskingParams, SpanMasker


@pytest.fixture
def data_copy(wordpiece_data, tmp_path):
    out, dictionary, _ = wordpiece_data
    for name in ("dict.txt", "train.bin", "train.idx", "valid.bin", "valid.idx"):
        shutil.copy(out / name, tmp_path / name)
    return tmp_path, dictionary


# --- binaries ---------------------------------------------------------------------------------

def test_truncated_bin_is_detected_from_the_index(data_copy):
    path, _ = data_copy
    size = (path / "train.bin").stat().st_size
    with open(path / "train.bin", "r+b") as f:
        f.truncate(size - 100)
    with pytest.raises(BinaryDataError, match=r"train\.bin holds .* truncated"):
        TokenFile(str(path / "train"))


def test_idx_from_another_dataset_is_detected(data_copy):
    path, _ = data_copy
    shutil.copy(path / "valid.idx", path / "train.idx")
    with pytest.raises(BinaryDataError, match=r"\.idx belongs to another dataset"):
        TokenFile(str(path / "train"))


def test_idx_that_is_not_an_mmap_index(data_copy):
    path, _ = data_copy
    (path / "train.idx").write_bytes(b"TNTIDX\x00\x00" + bytes(40))
    with pytest.raises(BinaryDataError, match="not a fairseq mmap index"):
        TokenFile(str(path / "train"))


def test_missing_split_names_the_path(data_copy):
    path, _ = data_copy
    with pytest.raises(BinaryDataError, match=rf"split 'test' not found: missing {path}/test\.idx"):
        TokenFile(str(path / "test"))
    (path / "valid.bin").unlink()
    with pytest.raises(BinaryDataError, match=r"valid\.bin"):
        TokenFile(str(path / "valid"))


def test_empty_shard(tmp_path):
    from fairseq.data.indexed_dataset import MMapIndexedDatasetBuilder

    MMapIndexedDatasetBuilder(str(tmp_path / "train.bin"), dtype=np.uint16).finalize(str(tmp_path / "train.idx"))
    with pytest.raises(BinaryDataError, match=r"train\.idx: empty split \(0 lines\)"):
        TokenFile(str(tmp_path / "train"))


def test_dict_with_fewer_entries_than_the_ids(data_copy):
    path, dictionary = data_copy
    from spanbert_fairseq.data.dictionary import BertDictionary

    lines = (path / "dict.txt").read_text().split("\n")[:2000]  # all specials, few words
    (path / "dict.txt").write_text("\n".join(lines) + "\n")
    small = BertDictionary.load(str(path / "dict.txt"))
    with pytest.raises(BinaryDataError, match=r"token id \d+ \(line \d+\) is not in .*2000 entries.*does not match"):
        TokenFile(str(path / "train")).check_dictionary(small, str(path / "dict.txt"))


def test_dict_with_other_special_ids(data_copy, sentencepiece_data):
    """A SentencePiece dict.txt (</s> = 2) over WordPiece binaries ([SEP] = 102): lines end wrong."""
    path, _ = data_copy
    _, spm_dictionary, _ = sentencepiece_data
    tokens = TokenFile(str(path / "valid"))
    big = type(spm_dictionary).load(str(path / "dict.txt"))
    big.eos_index = spm_dictionary.eos()  # same size, other eos id: only the eos check can tell
    with pytest.raises(BinaryDataError, match=r"lines .* do not end with .* \(id 2\): .* does not match"):
        tokens.check_dictionary(big)


# --- masking options ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "options,message",
    [
        ({"span_lower": 5, "span_upper": 3}, r"--span-upper \(3\) must not be below --span-lower \(5\)"),
        ({"geometric_p": 0.0}, r"--geometric-p must lie in \(0, 1\], got 0.0"),
        ({"geometric_p": 1.5}, r"--geometric-p must lie in \(0, 1\], got 1.5"),
        ({"mask_ratio": 0.0}, r"--mask-ratio must lie in \(0, 1\), got 0.0"),
        ({"mask_ratio": 1.0}, r"--mask-ratio must lie in \(0, 1\), got 1.0"),
        ({"max_pair_targets": 0}, r"--max-pair-targets must be at least 1, got 0"),
        ({"span_lower": 0}, r"--span-lower must be at least 1"),
        ({"random_token_prob": 0.6, "leave_unmasked_prob": 0.6}, r"--leave-unmasked-prob plus --random-token-prob"),
        ({"masking_scheme": "ngram"}, r"--masking-scheme must be one of \['span', 'subword', 'whole_word'\]"),
    ],
)
def test_bad_masking_options_name_the_flag(wordpiece_data, options, message):
    with pytest.raises(ValueError, match=message):
        SpanMasker(MaskingParams(**options), wordpiece_data[1])


def test_geometric_p_of_one_is_valid(wordpiece_data):
    masker = SpanMasker(MaskingParams(geometric_p=1.0), wordpiece_data[1])
    block = np.full(100, wordpiece_data[1].index("the"))
    assert set(masker.trace_spans(block, 0, 1, 0)[:, 2]) == {1}


def test_unigram_without_counts_says_what_to_do(wordpiece_data):
    dictionary = wordpiece_data[1]
    with pytest.raises(ValueError, match="needs token counts in dict.txt.*--random-token-source uniform"):
        SpanMasker(MaskingParams(), dictionary, unigram_counts=np.zeros(len(dictionary)))


# --- degenerate blocks ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def masker(wordpiece_data):
    return SpanMasker(MaskingParams(), wordpiece_data[1])


def check(masker, block, masked_count):
    out = masker.mask_block(np.asarray(block), 5, 1, 0)
    d = masker.dictionary
    masked = (out.target != d.pad()).numpy()
    assert masked.sum() == masked_count
    assert out.source.shape == out.target.shape == (len(block),)
    return out, masked


def test_block_without_word_starts(masker):
    """Only continuation pieces: the block start acts as the one word start; the budget is still exact."""
    d = masker.dictionary
    block = [d.index(t) for t in ("##ing", "##s", "##ed", "##ly", "##er")] * 20
    out, masked = check(masker, block, 15)
    # One run from the block start (the whole block is one "word"); no SBO pair (it touches the edge).
    assert masked[:15].all() and len(out.pairs) == 0


@pytest.mark.parametrize("n", [1, 2])
def test_blocks_of_one_or_two_tokens(masker, n):
    d = masker.dictionary
    out, masked = check(masker, [d.index("hello"), d.index("world")][:n], 1)
    assert out.pairs.shape == (0, 2) and out.pair_targets.shape == (0, 15)


def test_block_of_only_unk(masker):
    """[UNK] is special: never masked, so such a block gets no targets (and no error)."""
    d = masker.dictionary
    out, _ = check(masker, [d.unk()] * 50, 0)
    assert out.source.tolist() == [d.unk()] * 50 and len(out.pairs) == 0


def test_mostly_unk_block_masks_what_it_can(masker):
    d = masker.dictionary
    block = [d.unk()] * 40 + [d.index("##ing")] + [d.unk()] * 9
    out, masked = check(masker, block, 1)
    assert masked[40] and out.pairs.tolist() == [[39, 41]]


def test_empty_block(masker):
    out = masker.mask_block(np.zeros(0, dtype=np.int64), 1, 1, 0)
    assert out.source.shape == (0,) and out.pairs.shape == (0, 2)


def test_token_outside_the_vocabulary(masker):
    with pytest.raises(IndexError, match="token id 40000 at position 1 is outside the vocabulary of 30522"):
        masker.mask_block(np.array([1000, 40000]), 1, 1, 0)


def test_dict_of_another_vocabulary_of_the_same_size_is_flagged(data_copy, caplog):
    """Same size and same [SEP] id (e.g. cased vs uncased): ids all fit, so only the counts can tell."""
    import logging

    from spanbert_fairseq.data.binaries import count_similarity

    path, dictionary = data_copy
    tokens = TokenFile(str(path / "train"))
    with caplog.at_level(logging.WARNING, logger="spanbert_fairseq.data.binaries"):
        tokens.check_dictionary(dictionary)
    assert not caplog.records
    observed = np.bincount(np.asarray(tokens.tokens), minlength=len(dictionary))
    assert count_similarity(dictionary, observed) > 0.95
    other = type(dictionary).load(str(path / "dict.txt"))
    other.count = list(np.random.default_rng(0).permutation(other.count))  # another vocabulary's counts
    with caplog.at_level(logging.WARNING, logger="spanbert_fairseq.data.binaries"):
        tokens.check_dictionary(other, "other/dict.txt")
    assert "do not resemble other/dict.txt's counts" in caplog.text and "another vocabulary" in caplog.text


# --- the split stamp spanbert-preprocess writes ------------------------------------------------

@pytest.fixture(scope="module")
def stamped_data(tmp_path_factory, bert_vocab, stdlib_documents):
    """spanbert-preprocess output (stamps beside the splits) for a few real documents."""
    from spanbert_preprocess.cli import main

    work = tmp_path_factory.mktemp("stamped")
    text = "\n\n".join("\n".join(doc[:4]) for doc in stdlib_documents[:12]) + "\n"
    (work / "corpus.txt").write_text(text, encoding="utf-8")
    assert main([str(work / "corpus.txt"), "--vocab", str(bert_vocab), "--valid-fraction", "0.2", "--workers", "1",
                 "--destdir", str(work / "data")]) == 0
    return work / "data"


@pytest.fixture
def stamped_copy(stamped_data, tmp_path):
    shutil.copytree(stamped_data, tmp_path / "data")
    return tmp_path / "data"


def never_scanned(monkeypatch):
    def scan_ids(self, dictionary, dict_path="dict.txt"):
        raise AssertionError(f"{self.bin_path} was scanned although its stamp says all")

    monkeypatch.setattr(TokenFile, "scan_ids", scan_ids)


def test_a_stamp_checks_the_dictionary_without_reading_the_bin(stamped_copy, monkeypatch):
    from spanbert_fairseq.data.dictionary import BertDictionary

    never_scanned(monkeypatch)
    dictionary = BertDictionary.load(str(stamped_copy / "dict.txt"))
    for split in ("train", "valid"):
        tokens = TokenFile(str(stamped_copy / split))
        tokens.check_dictionary(dictionary, str(stamped_copy / "dict.txt"))
        assert tokens._tokens is None  # the .bin was never even mapped


def test_a_stamp_refuses_another_vocabulary_of_the_same_size(stamped_copy, monkeypatch):
    """Two word pieces trade ids: same size, same specials, every id in range. No scan can see it."""
    from spanbert_fairseq.data.dictionary import BertDictionary

    never_scanned(monkeypatch)
    lines = (stamped_copy / "dict.txt").read_text(encoding="utf-8").split("\n")
    lines[2000], lines[2001] = lines[2001], lines[2000]
    (stamped_copy / "dict.txt").write_text("\n".join(lines), encoding="utf-8")
    other = BertDictionary.load(str(stamped_copy / "dict.txt"))
    with pytest.raises(BinaryDataError) as refused:
        TokenFile(str(stamped_copy / "train")).check_dictionary(other, str(stamped_copy / "dict.txt"))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{stamped_copy}/train.bin was written with another vocabulary than "
                              f"{stamped_copy}/dict.txt: {stamped_copy}/train.stamp.json records {len(other)} entries")
    assert message.endswith("use the dict.txt spanbert-preprocess wrote with these binaries")


def test_a_stamp_of_replaced_binaries_falls_back_to_the_scan(stamped_copy, caplog):
    import logging

    from spanbert_fairseq.data.dictionary import BertDictionary

    shutil.copy(stamped_copy / "valid.stamp.json", stamped_copy / "train.stamp.json")  # describes other binaries
    tokens = TokenFile(str(stamped_copy / "train"))
    with caplog.at_level(logging.INFO, logger="spanbert_fairseq.data.binaries"):
        tokens.check_dictionary(BertDictionary.load(str(stamped_copy / "dict.txt")))
    assert "the binaries were replaced after spanbert-preprocess wrote them; checking every id" in caplog.text
    assert "checking every id against" in caplog.text and tokens._tokens is not None


def test_an_unreadable_stamp_names_the_file(stamped_copy):
    from spanbert_fairseq.data.dictionary import BertDictionary

    (stamped_copy / "train.stamp.json").write_text("{not json")
    with pytest.raises(BinaryDataError, match=r"train\.stamp\.json: unreadable split stamp .*delete it"):
        TokenFile(str(stamped_copy / "train")).check_dictionary(BertDictionary.load(str(stamped_copy / "dict.txt")))
