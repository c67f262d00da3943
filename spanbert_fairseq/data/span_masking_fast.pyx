# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels: SpanBERT span masking (docs/data.md, "Span masking") and block packing at load time.

Randomness comes from splitmix64 keyed on (seed, epoch, index), so a block's mask is a pure
function of those three numbers: the same across runs, resumes and world sizes, new each epoch,
with no numpy Generator built per item.
"""

import numpy as np

cimport numpy as cnp
from libc.math cimport ceil
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc

cnp.import_array()

cdef uint64_t GOLDEN = 0x9E3779B97F4A7C15

# The masking schemes, by the names of --masking-scheme; a scheme's code is its index here.
SCHEMES = ("span", "subword", "whole_word")
cdef enum:
    SCHEME_SPAN = 0
    SCHEME_SUBWORD = 1
    SCHEME_WHOLE_WORD = 2


cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)


cdef struct Rng:
    uint64_t state


cdef inline void rng_seed(Rng* r, uint64_t seed, uint64_t epoch, uint64_t index) noexcept nogil:
    # Each mix64 is a bijection; chaining makes nearby keys give unrelated streams.
    r.state = mix64(mix64(mix64(seed + GOLDEN) + epoch) + index)


cdef inline double rng_uniform(Rng* r) noexcept nogil:
    """Uniform double in [0, 1) from the top 53 bits."""
    r.state += GOLDEN
    return (mix64(r.state) >> 11) * (1.0 / 9007199254740992.0)


cdef inline Py_ssize_t rng_below(Rng* r, Py_ssize_t n) noexcept nogil:
    """Uniform integer in [0, n); the bias is below 2^-40 for any block length."""
    return <Py_ssize_t>(rng_uniform(r) * n)


cdef inline Py_ssize_t search_cdf(const double* cdf, Py_ssize_t n, double u) noexcept nogil:
    """First i with u < cdf[i] (cdf[n-1] == 1)."""
    cdef Py_ssize_t lo = 0, hi = n - 1, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if u < cdf[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


cdef class SpanMaskingKernel:
    """Masks one block per call; holds the vocabulary tables and the masking parameters."""

    cdef const uint8_t[::1] word_start   # (V,) token begins a word
    cdef const uint8_t[::1] maskable     # (V,) token may be masked (not a special)
    cdef const double[::1] length_cdf    # (L,) CDF of span lengths span_lower..span_upper words
    cdef const int64_t[::1] random_ids   # (R,) candidate random replacement tokens
    cdef const double[::1] random_cdf    # (R,) CDF over random_ids, or empty for uniform
    cdef int64_t span_lower, mask_id, pad_id, max_pair_targets
    cdef double mask_ratio, p_mask, p_mask_or_random
    cdef int scheme
    cdef bint per_span

    def __init__(self, word_start, maskable, length_cdf, int64_t span_lower, double mask_ratio,
                 str scheme, bint per_span, double p_mask, double p_random,
                 random_ids, random_cdf, int64_t mask_id, int64_t pad_id, int64_t max_pair_targets):
        self.word_start = np.ascontiguousarray(word_start, dtype=np.uint8)
        self.maskable = np.ascontiguousarray(maskable, dtype=np.uint8)
        self.length_cdf = np.ascontiguousarray(length_cdf, dtype=np.float64)
        self.random_ids = np.ascontiguousarray(random_ids, dtype=np.int64)
        self.random_cdf = np.ascontiguousarray(random_cdf, dtype=np.float64)
        self.span_lower = span_lower
        self.mask_ratio = mask_ratio
        self.scheme = SCHEMES.index(scheme)
        self.per_span = per_span
        self.p_mask = p_mask
        self.p_mask_or_random = p_mask + p_random
        self.mask_id = mask_id
        self.pad_id = pad_id
        self.max_pair_targets = max_pair_targets

    def budget(self, Py_ssize_t n):
        return self._budget(n)

    cdef inline Py_ssize_t _budget(self, Py_ssize_t n) noexcept nogil:
        """ceil(mask_ratio * n), robust to float error (0.15 * 20 is 3.0000000000000004)."""
        return <Py_ssize_t>ceil(self.mask_ratio * n - 1e-9)

    def mask(self, const int64_t[::1] block, uint64_t seed, uint64_t epoch, uint64_t index):
        """-> (source (n,), target (n,), pairs (K, 2), pair_targets (K, max_pair_targets)), int64."""
        return self._run(block, seed, epoch, index, None)

    def trace_spans(self, const int64_t[::1] block, uint64_t seed, uint64_t epoch, uint64_t index):
        """The spans placed by `mask` for the same arguments, for tests: (S, 3) int64 rows
        (first token, end token exclusive, drawn length in words). Span scheme only."""
        trace = np.zeros((max(1, self.budget(block.shape[0])), 3), dtype=np.int64)
        n_spans = np.zeros(1, dtype=np.int64)
        self._run(block, seed, epoch, index, (trace, n_spans))
        return trace[: n_spans[0]]

    cdef tuple _run(self, const int64_t[::1] block, uint64_t seed, uint64_t epoch, uint64_t index, tuple trace_out):
        cdef Py_ssize_t n = block.shape[0], i
        cdef Rng rng
        cdef int64_t[:, ::1] trace
        cdef int64_t[::1] n_spans
        cdef int64_t* trace_ptr = NULL
        cdef int64_t* n_spans_ptr = NULL
        if trace_out is not None:
            trace, n_spans = trace_out
            trace_ptr, n_spans_ptr = &trace[0, 0], &n_spans[0]
        # One allocation: word starts of the block (whole-word scheme), then three flag bytes per
        # token: word start | maskable | masked.
        cdef Py_ssize_t* word_starts = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t) + 3 * n)
        if word_starts == NULL:
            raise MemoryError()
        cdef uint8_t* ws = <uint8_t*>(word_starts + n + 1)
        cdef uint8_t* ok = ws + n
        cdef uint8_t* masked = ws + 2 * n
        cdef Py_ssize_t n_ok = 0, budget
        try:
            rng_seed(&rng, seed, epoch, index)
            for i in range(n):
                if block[i] < 0 or block[i] >= self.word_start.shape[0]:
                    raise IndexError(f"token id {block[i]} at position {i} is outside the vocabulary "
                                     f"of {self.word_start.shape[0]}")
                ws[i] = self.word_start[block[i]]
                ok[i] = self.maskable[block[i]]
                masked[i] = 0
                n_ok += ok[i]
            if n > 0:
                ws[0] = 1  # the block start begins a word even inside a split line
            budget = min(self._budget(n), n_ok)
            if self.scheme == SCHEME_SPAN:
                self._place_spans(&rng, n, ws, ok, masked, budget, trace_ptr, n_spans_ptr)
            elif self.scheme == SCHEME_SUBWORD:
                self._place_tokens(&rng, n, ok, masked, budget)
            else:
                self._place_words(&rng, n, ws, ok, masked, budget, word_starts)
            return self._replace_and_collect(&rng, block, masked)
        finally:
            free(word_starts)

    cdef inline Py_ssize_t _draw_anchor(self, Rng* rng, Py_ssize_t n, uint8_t* ok, uint8_t* masked) noexcept nogil:
        """A token uniform over the block, drawn again while masked or special."""
        cdef Py_ssize_t a = rng_below(rng, n)
        while masked[a] or not ok[a]:
            a = rng_below(rng, n)
        return a

    cdef void _place_spans(self, Rng* rng, Py_ssize_t n, uint8_t* ws, uint8_t* ok, uint8_t* masked,
                           Py_ssize_t budget, int64_t* trace, int64_t* n_spans) noexcept nogil:
        cdef Py_ssize_t n_masked = 0, a, s, i, length, words
        cdef Py_ssize_t n_lengths = self.length_cdf.shape[0]
        while n_masked < budget:
            length = self.span_lower + search_cdf(&self.length_cdf[0], n_lengths, rng_uniform(rng))
            a = self._draw_anchor(rng, n, ok, masked)
            # Left to the word start, but never onto a special ([UNK] ##x keeps ##x maskable).
            s = a
            while s > 0 and not ws[s] and ok[s - 1]:
                s -= 1
            # Whole words rightward; a word start past s closes a word; a special ends the span.
            words = 0
            i = s
            while i < n and n_masked < budget and ok[i]:
                if ws[i] and i > s:
                    words += 1
                    if words == length:
                        break
                if not masked[i]:
                    masked[i] = 1
                    n_masked += 1
                i += 1
            if trace != NULL:
                trace[3 * n_spans[0]] = s
                trace[3 * n_spans[0] + 1] = i
                trace[3 * n_spans[0] + 2] = length
                n_spans[0] += 1

    cdef void _place_tokens(self, Rng* rng, Py_ssize_t n, uint8_t* ok, uint8_t* masked,
                            Py_ssize_t budget) noexcept nogil:
        cdef Py_ssize_t n_masked = 0
        while n_masked < budget:
            masked[self._draw_anchor(rng, n, ok, masked)] = 1
            n_masked += 1

    cdef void _place_words(self, Rng* rng, Py_ssize_t n, uint8_t* ws, uint8_t* ok, uint8_t* masked,
                           Py_ssize_t budget, Py_ssize_t* starts) noexcept nogil:
        """Words uniform over the block's words (BERT's whole-word masking), to the same budget."""
        cdef Py_ssize_t n_words = 0, n_masked = 0, i, w
        for i in range(n):
            if ok[i] and (ws[i] or not ok[i - 1]):  # ws[0] is set, so i - 1 >= 0 here
                starts[n_words] = i
                n_words += 1
        while n_masked < budget:
            w = starts[rng_below(rng, n_words)]
            if masked[w]:
                continue
            i = w
            while i < n and n_masked < budget and ok[i] and (i == w or not ws[i]):
                masked[i] = 1
                n_masked += 1
                i += 1

    cdef inline int64_t _random_token(self, Rng* rng) noexcept nogil:
        cdef Py_ssize_t r = self.random_ids.shape[0]
        if self.random_cdf.shape[0] == 0:
            return self.random_ids[rng_below(rng, r)]
        return self.random_ids[search_cdf(&self.random_cdf[0], r, rng_uniform(rng))]

    cdef inline void _replace(self, Rng* rng, int64_t* src, Py_ssize_t s, Py_ssize_t e, double u) noexcept nogil:
        """Apply one 80/10/10 decision u to tokens s..e inclusive."""
        cdef Py_ssize_t i
        if u < self.p_mask:
            for i in range(s, e + 1):
                src[i] = self.mask_id
        elif u < self.p_mask_or_random:
            for i in range(s, e + 1):
                src[i] = self._random_token(rng)

    cdef tuple _replace_and_collect(self, Rng* rng, const int64_t[::1] block, uint8_t* masked):
        cdef Py_ssize_t n = block.shape[0], i, s, e, k, j, n_pairs = 0
        cdef int64_t m = self.max_pair_targets
        # Merged spans are the maximal runs of masked tokens: overlapping or touching spans join.
        # Count the runs with both boundaries inside the block first, to size the outputs.
        i = 1
        while i < n - 1:
            if masked[i] and not masked[i - 1]:
                while i < n - 1 and masked[i + 1]:
                    i += 1
                n_pairs += i < n - 1
            i += 1
        source_arr = np.empty(n, dtype=np.int64)
        target_arr = np.empty(n, dtype=np.int64)
        pairs_arr = np.empty((n_pairs, 2), dtype=np.int64)
        pair_targets_arr = np.full((n_pairs, m), self.pad_id, dtype=np.int64)
        cdef int64_t[::1] src = source_arr
        cdef int64_t[::1] tgt = target_arr
        cdef int64_t[:, ::1] pairs = pairs_arr
        cdef int64_t[:, ::1] pair_targets = pair_targets_arr
        k = 0
        i = 0
        while i < n:
            if not masked[i]:
                src[i] = block[i]
                tgt[i] = self.pad_id
                i += 1
                continue
            s = i
            while i + 1 < n and masked[i + 1]:
                i += 1
            e = i
            for j in range(s, e + 1):
                src[j] = block[j]
                tgt[j] = block[j]
            if self.per_span:
                self._replace(rng, &src[0], s, e, rng_uniform(rng))
            else:
                for j in range(s, e + 1):
                    self._replace(rng, &src[0], j, j, rng_uniform(rng))
            if s > 0 and e < n - 1:
                pairs[k, 0] = s - 1
                pairs[k, 1] = e + 1
                for j in range(min(e - s + 1, m)):
                    pair_targets[k, j] = block[s + j]
                k += 1
            i += 1
        return source_arr, target_arr, pairs_arr, pair_targets_arr


cdef struct Blocks:
    # Output arrays, or NULL to only count; and the counts.
    int64_t* begin
    int64_t* end
    int64_t* first
    int64_t* length
    Py_ssize_t n
    int64_t documents, empty_documents, split_lines


cdef inline void emit(Blocks* out, int64_t begin, int64_t end, int64_t first, int64_t length) noexcept nogil:
    if out.begin != NULL:
        out.begin[out.n] = begin
        out.end[out.n] = end
        out.first[out.n] = first
        out.length[out.n] = length
    out.n += 1


cdef void pack_lines(const int32_t[::1] sizes, int64_t block_size, Blocks* out) noexcept nogil:
    """Greedy packing of lines into blocks within documents; see build_blocks."""
    cdef Py_ssize_t line
    cdef int64_t pos = 0, content, off
    cdef int64_t cur_begin = 0, cur_end = 0, cur_first = 0, cur_len = 0
    cdef bint doc_has_text = False
    for line in range(sizes.shape[0]):
        content = sizes[line] - 1
        if content <= 0:  # eos alone: a document boundary
            if cur_len:
                emit(out, cur_begin, cur_end, cur_first, cur_len)
                cur_len = 0
            out.documents += doc_has_text
            out.empty_documents += not doc_has_text
            doc_has_text = False
        elif cur_len + content <= block_size:
            doc_has_text = True
            if cur_len == 0:
                cur_begin = pos
                cur_first = line
            cur_len += content
            cur_end = pos + content
        else:
            doc_has_text = True
            if cur_len:
                emit(out, cur_begin, cur_end, cur_first, cur_len)
            off = 0
            if content > block_size:
                out.split_lines += 1
                while content - off > block_size:
                    emit(out, pos + off, pos + off + block_size, line, block_size)
                    off += block_size
            cur_begin = pos + off
            cur_first = line
            cur_len = content - off
            cur_end = pos + content
        pos += sizes[line]
    if cur_len:
        emit(out, cur_begin, cur_end, cur_first, cur_len)
    out.documents += doc_has_text


def build_blocks(const int32_t[::1] sizes, int64_t block_size):
    """Greedy packing of lines into blocks of at most block_size tokens, within documents.

    `sizes` are item lengths in the binaries, each line's tokens plus its trailing eos; an item of
    size 1 (eos alone) is a document boundary. A line longer than a block is cut into block_size
    pieces and its tail starts the next block. Returns (begin, end, first_line, length) arrays, int64:
    block b covers flat token positions begin..end-1 minus the eos of lines first_line..; and
    a dict of counts. Two passes (count, then fill) keep memory at the size of the result.
    """
    cdef Blocks counted
    counted.begin = NULL
    counted.n = counted.documents = counted.empty_documents = counted.split_lines = 0
    pack_lines(sizes, block_size, &counted)
    begin_arr, end_arr, first_arr, length_arr = (np.empty(counted.n, dtype=np.int64) for _ in range(4))
    cdef int64_t[::1] begin = begin_arr, end = end_arr, first = first_arr, length = length_arr
    cdef Blocks out
    out.n = out.documents = out.empty_documents = out.split_lines = 0
    if counted.n:
        out.begin, out.end, out.first, out.length = &begin[0], &end[0], &first[0], &length[0]
        pack_lines(sizes, block_size, &out)
    stats = dict(documents=counted.documents, empty_documents=counted.empty_documents,
                 split_lines=counted.split_lines)
    return begin_arr, end_arr, first_arr, length_arr, stats
