#!/usr/bin/env bash
# Run HERE (a machine with PyPI), once, before benchmarks/gpu.sh runs on the GPU machine, whose
# image has torch, numpy, transformers, Cython, scipy, scikit-learn, sacrebleu and tqdm but none of
# fairseq's own stack and no network. Downloads exactly the wheels gpu.sh installs there
# (`pip install --no-index --require-hashes -r .whl/requirements.txt`) and a BERT uncased vocab.txt.
# .whl/ is ignored by git: the device tool takes it with `carry: [".whl"]` (about 4 MB).
#   bash benchmarks/gpu_prepare.sh                    # for the GPU image (CPython 3.12, x86-64)
#   GPU_PYTHON=3.11 WHEELS=/tmp/w bash benchmarks/gpu_prepare.sh   # the same pins for a CPU rehearsal
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
WHEELS=${WHEELS:-.whl}
GPU_PYTHON=${GPU_PYTHON:-3.12}
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
# fairseq 0.12 (as ve-fairseq: wheels for 3.11/3.12) and the one compiled package of its that the
# image lacks. fairseq's other requirements are in the image (cffi is required but never imported;
# torchaudio is in the image and only fairseq's speech code imports it).
BINARY=(ve-fairseq==0.12.3 bitarray==3.12.3)
# fairseq's config stack, pure Python (PyYAML, omegaconf's one requirement, is in the image).
PURE=(hydra-core==1.3.8 omegaconf==2.3.1)
# hydra's parser runtime: published as an sdist only; pure Python, so a wheel built here installs there.
BUILT=(antlr4-python3-runtime==4.9.3)

rm -rf "$WHEELS" && mkdir -p "$WHEELS"
echo "gpu_prepare: downloading ${BINARY[*]} ${PURE[*]} for cp${GPU_PYTHON/./} into $WHEELS/, building ${BUILT[*]}"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$GPU_PYTHON" --implementation cp \
  "${PLATFORMS[@]}" -d "$WHEELS" "${BINARY[@]}" "${PURE[@]}"
"$PY" -m pip wheel --quiet --no-deps -w "$WHEELS" "${BUILT[@]}"
# The pins with their hashes: gpu.sh installs these files and nothing else.
"$PY" - "$WHEELS" "${BINARY[@]}" "${PURE[@]}" "${BUILT[@]}" <<'EOF'
import hashlib, pathlib, re, sys

folder, pins = pathlib.Path(sys.argv[1]), sys.argv[2:]
lines = []
for pin in pins:
    name, version = pin.split("==")
    stem = re.sub(r"[-_.]+", "_", name).lower()
    found = [p for p in folder.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if len(found) != 1:
        sys.exit(f"gpu_prepare: expected one wheel for {pin} in {folder}, found {[p.name for p in found]}")
    digest = hashlib.sha256(found[0].read_bytes()).hexdigest()
    lines.append(f"{pin} --hash=sha256:{digest}  # {found[0].name}")
(folder / "requirements.txt").write_text("\n".join(lines) + "\n")
EOF
# The GPU image has no BERT vocabulary; gpu.sh reads this copy (BENCH_VOCAB).
"$PY" -c "import sys; sys.path.insert(0, 'benchmarks'); import benchlib, shutil; shutil.copy(benchlib.bert_vocab_path(), '$WHEELS/vocab.txt')"
ls -1 "$WHEELS"
echo "gpu_prepare: $(ls "$WHEELS"/*.whl | wc -l) wheels (pinned with hashes in $WHEELS/requirements.txt) + vocab.txt," \
  "$(du -sh "$WHEELS" | cut -f1) in $WHEELS/ (carry it to the GPU machine)"
