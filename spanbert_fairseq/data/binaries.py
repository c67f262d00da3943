"""One split of fairseq mmap binaries (`PREFIX.idx` + `PREFIX.bin`), checked and read as one flat array.

fairseq's `MMapIndexedDataset` reads one item per call; a block spans many items, so this reader
exposes the whole `.bin` as a flat token array and checks on load what fairseq's reader assumes:
the index matches the data file, every id fits the dictionary, every line ends with `eos()`.
The dictionary check reads the stamp spanbert-preprocess wrote beside the split (constant time,
and it tells two vocabularies of the same size apart); binaries without one (stock
fairseq-preprocess) are scanned in full, which the task does on one rank per job.
"""

import logging
import os

import numpy as np

from spanbert_text.mmap_index import BinaryDataError, read_index
from spanbert_text.split_stamp import read_stamp, stamp_path, vocabulary_sha256

logger = logging.getLogger(__name__)

# Same vocabulary: cosine ~0.9-1.0, even between shards of different topics; another vocabulary
# ~0.1. Splits under 50k tokens are too small for their frequencies to say much.
_MIN_COUNT_SIMILARITY = 0.5
_MIN_TOKENS_FOR_COUNT_CHECK = 50_000
_CHECK_CHUNK = 1 << 24  # tokens per step when scanning ids, to bound memory


class TokenFile:
    """`sizes` (lines,) int32 items lengths with eos; `starts` (lines,) int64 flat offsets; `tokens` flat."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.idx_path, self.bin_path = prefix + ".idx", prefix + ".bin"
        missing = [p for p in (self.idx_path, self.bin_path) if not os.path.exists(p)]
        if missing:
            raise BinaryDataError(
                f"split {os.path.basename(prefix)!r} not found: missing {' and '.join(missing)}"
            )
        self.dtype, self.sizes, pointers = read_index(self.idx_path)
        if len(self.sizes) == 0:
            raise BinaryDataError(f"{self.idx_path}: empty split (0 lines); remove the shard or re-run preprocessing")
        if self.sizes.min() < 1:
            line = int(np.argmin(self.sizes))
            raise BinaryDataError(f"{self.idx_path}: line {line} has no tokens, not even its [SEP]")
        self.starts = np.zeros(len(self.sizes), dtype=np.int64)
        np.cumsum(self.sizes[:-1], out=self.starts[1:])
        self.num_tokens = int(self.starts[-1] + self.sizes[-1])
        itemsize = np.dtype(self.dtype).itemsize
        if not np.array_equal(pointers, self.starts * itemsize):
            raise BinaryDataError(f"{self.idx_path}: line offsets are not contiguous; not a fairseq mmap index")
        expected, actual = self.num_tokens * itemsize, os.path.getsize(self.bin_path)
        if actual != expected:
            raise BinaryDataError(
                f"{self.bin_path} holds {actual} bytes but {self.idx_path} describes {expected} "
                f"({self.num_tokens} tokens of {np.dtype(self.dtype).name}): the .bin is truncated or the "
                ".idx belongs to another dataset; re-run preprocessing"
            )
        self._tokens = None

    @property
    def tokens(self):
        """(num_tokens,) the whole .bin, memory-mapped on first use (and again after unpickling)."""
        if self._tokens is None:
            self._tokens = np.memmap(self.bin_path, dtype=self.dtype, mode="r", shape=(self.num_tokens,))
        return self._tokens

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_tokens"] = None  # workers map the file themselves instead of receiving a copy
        return state

    def check_dictionary(self, dictionary, dict_path="dict.txt"):
        """dict.txt matches these binaries: by their stamp if they have one, else by a scan."""
        if not self.check_stamp(dictionary, dict_path):
            self.scan_ids(dictionary, dict_path)

    def check_stamp(self, dictionary, dict_path="dict.txt"):
        """True if the split's stamp vouches for dict.txt; False if there is no stamp for these binaries."""
        stamp = read_stamp(self.prefix)
        if stamp is None:
            return False
        path = stamp_path(self.prefix)
        if (stamp["lines"], stamp["tokens"]) != (len(self.sizes), self.num_tokens):
            logger.warning(
                f"{path} describes {stamp['lines']} lines of {stamp['tokens']} tokens, {self.idx_path} holds "
                f"{len(self.sizes)} of {self.num_tokens}: the binaries were replaced after spanbert-preprocess "
                "wrote them; checking every id instead"
            )
            return False
        expected, actual = stamp["vocabulary_sha256"], vocabulary_sha256(dictionary.symbols)
        if expected != actual or stamp["largest_id"] >= len(dictionary):
            raise BinaryDataError(
                f"{self.bin_path} was written with another vocabulary than {dict_path}: {path} records "
                f"{stamp['vocabulary_size']} entries (sha256 {expected[:12]}), {dict_path} has {len(dictionary)} "
                f"(sha256 {actual[:12]}); use the dict.txt spanbert-preprocess wrote with these binaries"
            )
        return True

    def scan_ids(self, dictionary, dict_path="dict.txt"):
        """Every id below len(dictionary) and every line ending with its eos, else dict.txt does not match.

        Reads the whole .bin: for binaries without a stamp only."""
        logger.info(f"{self.bin_path}: checking every id against {dict_path} (no usable spanbert-preprocess stamp)")
        vocab = len(dictionary)
        counts = np.zeros(vocab, dtype=np.int64)
        for lo in range(0, self.num_tokens, _CHECK_CHUNK):
            chunk = self.tokens[lo : lo + _CHECK_CHUNK]
            if int(chunk.max()) >= vocab:
                where = lo + int(np.argmax(chunk >= vocab))
                line = int(np.searchsorted(self.starts, where, side="right") - 1)
                raise BinaryDataError(
                    f"{self.bin_path}: token id {int(self.tokens[where])} (line {line}) is not in {dict_path} "
                    f"({vocab} entries): {dict_path} does not match these binaries"
                )
            counts += np.bincount(chunk, minlength=vocab)
        similarity = count_similarity(dictionary, counts)
        big_enough = self.num_tokens >= _MIN_TOKENS_FOR_COUNT_CHECK
        if big_enough and similarity is not None and similarity < _MIN_COUNT_SIMILARITY:
            logger.warning(
                f"{self.bin_path}: token frequencies do not resemble {dict_path}'s counts (cosine {similarity:.2f}): "
                f"is {dict_path} from another vocabulary (e.g. cased vs uncased)?"
            )
        ends = self.tokens[self.starts + self.sizes - 1]
        bad = np.flatnonzero(ends != dictionary.eos())
        if len(bad):
            raise BinaryDataError(
                f"{self.bin_path}: {len(bad)} of {len(ends)} lines (first: line {int(bad[0])}) do not end with "
                f"{dict_path}'s {dictionary.eos_word} (id {dictionary.eos()}): {dict_path} does not match "
                "these binaries"
            )


def count_similarity(dictionary, counts):
    """Cosine of dict.txt's counts and `counts` over the non-special ids; None if dict.txt has no counts.

    dict.txt counts are the corpus unigram, so binaries written with the same vocabulary give ~1;
    the same ids read through another vocabulary of the same size give a low value.
    """
    expected = np.asarray(dictionary.count, dtype=np.float64).copy()
    observed = counts.astype(np.float64)
    expected[dictionary.special_ids()] = observed[dictionary.special_ids()] = 0
    if expected.std() == 0 or not observed.any():
        return None
    return float(expected @ observed / (np.linalg.norm(expected) * np.linalg.norm(observed)))
