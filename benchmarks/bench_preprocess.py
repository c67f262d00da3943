"""Preprocessing throughput: `spanbert-preprocess` vs the authors' pipeline shape, and binary identity.

Authors' shape: transformers' slow (pure Python) `BertTokenizer` in a pool of W workers writes
space-separated word pieces (blank lines kept, runs collapsed to one), then
`fairseq-preprocess --only-source --srcdict dict.txt --dataset-impl mmap --workers W
--user-dir spanbert_fairseq --task span_bert` binarises them. Ours: `spanbert-preprocess TEXT
--vocab vocab.txt --workers W`. Same text, same vocabulary, same W; each run is a fresh process
tree, timed wall-clock end to end; the two sides alternate, medians of `--rounds`.

Identity: the token ids spanbert-preprocess wrote are turned back into word pieces and given to
fairseq-preprocess; its .bin/.idx must be byte-identical to ours (asserted, per split).

    python benchmarks/bench_preprocess.py --workers 2 --rounds 3
"""

import argparse
import filecmp
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

# ---------------------------------------------------------------------------- authors' shape
_TOKENIZER = None


def _init_worker(vocab, lowercase):
    global _TOKENIZER
    # transformers 5's `BertTokenizer` runs on the Rust library; the authors' pipeline used the
    # pure-Python one, which transformers 5 keeps as BertTokenizerLegacy.
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as SlowBertTokenizer
    except ImportError:  # transformers 4: BertTokenizer is the pure-Python one
        from transformers import BertTokenizer as SlowBertTokenizer

    _TOKENIZER = SlowBertTokenizer(str(vocab), do_lower_case=lowercase)


def _pieces_of_lines(lines):
    return [" ".join(_TOKENIZER.tokenize(line)) if line.strip() else "" for line in lines]


def collapse_blank_runs(lines):
    """A run of blank lines is one document boundary (docs/DESIGN.md, binaries)."""
    kept, previous_blank = [], False
    for line in lines:
        blank = not line.strip()
        if not (blank and previous_blank):
            kept.append("" if blank else line)
        previous_blank = blank
    return kept


def slow_tokenize(corpus, pieces_path, vocab, workers, lowercase=True):
    """The first stage of the authors' shape: Python WordPiece in a pool of `workers`."""
    lines = collapse_blank_runs(Path(corpus).read_text(encoding="utf-8").split("\n"))
    if lines and lines[-1] == "":
        lines.pop()
    chunk = max(1, len(lines) // (workers * 8))
    chunks = [lines[i:i + chunk] for i in range(0, len(lines), chunk)]
    with multiprocessing.Pool(workers, initializer=_init_worker, initargs=(vocab, lowercase)) as pool:
        pieces = [line for part in pool.imap(_pieces_of_lines, chunks) for line in part]
    Path(pieces_path).write_text("\n".join(pieces) + "\n", encoding="utf-8")


def fairseq_preprocess_args(pieces_path, dict_path, dest_dir, workers):
    return ["--only-source", "--srcdict", str(dict_path), "--trainpref", str(pieces_path), "--destdir",
            str(dest_dir), "--workers", str(workers), "--dataset-impl", "mmap", "--user-dir", benchlib.USER_DIR,
            "--task", "span_bert"]


def fairseq_preprocess(pieces_path, dict_path, dest_dir, workers):
    """The authors' second stage, as its own process (it is timed end to end)."""
    cmd = [str(benchlib.VENV_BIN / "fairseq-preprocess")] + fairseq_preprocess_args(pieces_path, dict_path,
                                                                                     dest_dir, workers)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fairseq_preprocess_here(pieces_path, dict_path, dest_dir, split):
    """fairseq-preprocess in this process (untimed identity check: saves a fairseq start-up)."""
    from fairseq import options
    from fairseq_cli import preprocess

    parser = options.get_preprocessing_parser()
    preprocess.main(parser.parse_args(fairseq_preprocess_args(pieces_path, dict_path, dest_dir, 1)))
    if split != "train":
        for ext in ("bin", "idx"):
            (Path(dest_dir) / f"train.{ext}").rename(Path(dest_dir) / f"{split}.{ext}")


def run_authors(corpus, vocab, dict_path, out_dir, workers):
    out_dir.mkdir(parents=True)
    pieces = out_dir / "pieces.txt"
    cmd = [sys.executable, __file__, "--slow-tokenize", str(corpus), str(pieces), "--vocab", str(vocab),
           "--workers", str(workers)]
    subprocess.run(cmd, check=True)
    fairseq_preprocess(pieces, dict_path, out_dir / "bin", workers)
    return out_dir / "bin"


def run_ours(corpus, vocab, out_dir, workers):
    cmd = benchlib.spanbert_preprocess_cmd(corpus, vocab, out_dir, workers)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=benchlib.preprocess_env())
    return out_dir


# ---------------------------------------------------------------------------- identity
def pieces_from_binary(prefix, dictionary, out_path):
    """Write the word pieces of each item (eos dropped); an eos-only item is a blank line."""
    from fairseq.data import data_utils

    dataset = data_utils.load_indexed_dataset(str(prefix), None, "mmap")
    symbols = dictionary.symbols
    with open(out_path, "w", encoding="utf-8") as fh:
        for i in range(len(dataset)):
            ids = dataset[i].tolist()
            assert ids[-1] == dictionary.eos(), f"item {i} of {prefix} does not end with eos"
            fh.write(" ".join(symbols[t] for t in ids[:-1]) + "\n")


def check_identity(ours_dir, dict_path, work_dir):
    """fairseq-preprocess on our own token sequence must reproduce our binaries byte for byte."""
    from spanbert_fairseq.data.dictionary import BertDictionary

    dictionary = BertDictionary.load(str(dict_path))
    checked = []
    for split in ("train", "valid"):
        if not (ours_dir / f"{split}.idx").exists():
            continue
        pieces = work_dir / f"roundtrip_{split}.txt"
        pieces_from_binary(ours_dir / split, dictionary, pieces)
        dest = work_dir / f"roundtrip_{split}"
        fairseq_preprocess_here(pieces, dict_path, dest, split)
        for ext in ("bin", "idx"):
            same = filecmp.cmp(ours_dir / f"{split}.{ext}", dest / f"{split}.{ext}", shallow=False)
            assert same, f"{split}.{ext}: spanbert-preprocess differs from fairseq-preprocess on the same pieces"
        checked.append(split)
    assert checked, f"no binaries in {ours_dir}"
    return checked


def item_agreement(ours_dir, authors_dir):
    """How many items the slow tokenizer's binaries share with ours (train, in order)."""
    from fairseq.data import data_utils

    ours = data_utils.load_indexed_dataset(str(ours_dir / "train"), None, "mmap")
    theirs = data_utils.load_indexed_dataset(str(authors_dir / "train"), None, "mmap")
    if len(ours) != len(theirs):
        return f"item counts differ ({len(ours)} vs {len(theirs)}; ours may hold out valid documents)"
    same = sum(bool((ours[i] == theirs[i]).all()) if ours.sizes[i] == theirs.sizes[i] else False
               for i in range(len(ours)))
    return f"{same}/{len(ours)} items identical to the slow tokenizer's"


# ---------------------------------------------------------------------------- driver
def prepare_corpus(args, work_dir):
    if args.corpus:
        return Path(args.corpus)
    corpus = work_dir / "corpus.txt"
    if args.mb:
        return benchlib.write_corpus(corpus, args.mb)
    subprocess.run([sys.executable, "-m", "spanbert_preprocess.default_corpus", str(corpus)], check=True,
                   stdout=subprocess.DEVNULL)
    return corpus


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="text file (default: the embedded default corpus)")
    parser.add_argument("--mb", type=float, default=None, help="instead: this many MB of pydoc prose")
    parser.add_argument("--vocab", default=None, help="BERT vocab.txt (default: the uncased one in the venv)")
    parser.add_argument("--workers", type=int, default=2, help="workers on both sides")
    parser.add_argument("--rounds", type=int, default=3, help="runs per side, alternating")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--slow-tokenize", nargs=2, metavar=("TEXT", "PIECES"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    vocab = Path(args.vocab or benchlib.bert_vocab_path())
    if args.slow_tokenize:
        return slow_tokenize(*args.slow_tokenize, vocab, args.workers)
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_preprocess_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    from spanbert_fairseq.data.dictionary import BertDictionary

    dict_path = work_dir / "dict.txt"
    BertDictionary.load(str(vocab)).save(str(dict_path))
    corpus = prepare_corpus(args, work_dir)
    megabytes = corpus.stat().st_size / 1e6
    print(benchlib.machine_line())
    print(benchlib.versions_line())

    times = {"spanbert-preprocess": [], "slow BertTokenizer + fairseq-preprocess": []}
    dirs = {}
    for r in range(args.rounds):
        runs = [("spanbert-preprocess", lambda d: run_ours(corpus, vocab, d, args.workers)),
                ("slow BertTokenizer + fairseq-preprocess",
                 lambda d: run_authors(corpus, vocab, dict_path, d, args.workers))]
        for name, run in (runs if r % 2 == 0 else runs[::-1]):
            start = time.perf_counter()
            dirs[name] = run(work_dir / f"{'ours' if 'spanbert' in name else 'authors'}_{r}")
            times[name].append(time.perf_counter() - start)

    checked = check_identity(dirs["spanbert-preprocess"], dict_path, work_dir)
    agreement = item_agreement(dirs["spanbert-preprocess"], dirs["slow BertTokenizer + fairseq-preprocess"])
    report(times, megabytes, args, checked, agreement, work_dir)


def report(times, megabytes, args, checked, agreement, work_dir):
    ours = benchlib.median(times["spanbert-preprocess"])
    rows = []
    for name, values in times.items():
        med = benchlib.median(values)
        rows.append([name, f"{megabytes:.2f}", args.workers, f"{med:.2f}",
                     " ".join(f"{v:.2f}" for v in values), f"{megabytes / med:.2f}", f"{med / ours:.2f}"])
    benchlib.print_table(["pipeline", "MB", "workers", "median s", "runs s", "MB/s", "speed-up of ours"], rows)
    authors = benchlib.median(times["slow BertTokenizer + fairseq-preprocess"])
    print(f"identity: {', '.join(checked)} .bin/.idx byte-identical to fairseq-preprocess on the same pieces; "
          f"{agreement}")
    print(f"bench_preprocess: {megabytes:.2f} MB, {args.workers} workers, {args.rounds} alternating runs: "
          f"spanbert-preprocess {megabytes / ours:.2f} MB/s vs authors' shape {megabytes / authors:.2f} MB/s "
          f"= x{authors / ours:.1f}; binaries identical (table above; outputs in {work_dir})")


if __name__ == "__main__":
    benchlib.quiet()
    main()
