"""spanbert-preprocess never imports fairseq or torch: importing them costs seconds a run."""

import json
import subprocess
import sys

# Runs the CLI twice into one --destdir (the second run reads the first's dict.txt), then reports
# which heavy modules the process holds.
RUN_AND_REPORT = """
import json, sys
from spanbert_preprocess.cli import main
codes = [main(sys.argv[1:]), main(sys.argv[1:])]
print(json.dumps({"codes": codes, "loaded": [m for m in ("fairseq", "torch", "spanbert_fairseq") if m in sys.modules]}))
"""


def test_cli_imports_neither_fairseq_nor_torch(tmp_path, small_docs, bert_vocab, write_corpus):
    corpus = write_corpus(tmp_path / "corpus.txt", small_docs)
    argv = [corpus, "--vocab", str(bert_vocab), "--valid-fraction", "0.2", "--destdir", str(tmp_path / "bin")]
    result = subprocess.run([sys.executable, "-c", RUN_AND_REPORT, *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"codes": [0, 0], "loaded": []}
    assert (tmp_path / "bin" / "train.idx").exists() and (tmp_path / "bin" / "valid.idx").exists()
