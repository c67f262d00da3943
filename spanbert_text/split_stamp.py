"""The stamp spanbert-preprocess writes beside each split (`PREFIX.stamp.json`): the one reader and writer.

It records which vocabulary wrote the binaries (the SHA-256 of `dict.txt`'s tokens in id order; the
counts are left out, they describe a corpus, not the ids) and what the writer saw (lines, tokens,
largest id), so a reader checks `dict.txt` against the binaries in constant time instead of scanning
the whole `.bin`, and tells apart two vocabularies of the same size, which no scan can.
"""

import hashlib
import json

from .files import write_text
from .mmap_index import BinaryDataError

STAMP_FORMAT = 1
WRITER = "spanbert-preprocess"
FIELDS = ("vocabulary_sha256", "vocabulary_size", "lines", "tokens", "largest_id")


def stamp_path(prefix):
    return prefix + ".stamp.json"


def vocabulary_sha256(symbols):
    """SHA-256 of the tokens in id order, one per line (what the ids mean, whatever the counts)."""
    return hashlib.sha256("".join(f"{s}\n" for s in symbols).encode("utf-8")).hexdigest()


def write_stamp(prefix, symbols, lines, tokens, largest_id):
    """`tokens` counts every id in the .bin (each line's final eos included), as the .idx does."""
    stamp = {"format": STAMP_FORMAT, "writer": WRITER, "vocabulary_sha256": vocabulary_sha256(symbols),
             "vocabulary_size": len(symbols), "lines": int(lines), "tokens": int(tokens),
             "largest_id": int(largest_id), "lines_end_with_eos": True}
    write_text(stamp_path(prefix), json.dumps(stamp, indent=1) + "\n")


def read_stamp(prefix):
    """The stamp beside PREFIX.bin as a dict, or None if there is none (e.g. fairseq-preprocess wrote it)."""
    path = stamp_path(prefix)
    try:
        with open(path, encoding="utf-8") as f:
            stamp = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise BinaryDataError(
            f"{path}: unreadable split stamp ({error}); delete it to check the binaries in full"
        ) from None
    if not isinstance(stamp, dict) or stamp.get("format") != STAMP_FORMAT or not all(k in stamp for k in FIELDS):
        raise BinaryDataError(f"{path}: not a format-{STAMP_FORMAT} split stamp; delete it to check the binaries "
                              "in full")
    return stamp
