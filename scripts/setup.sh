#!/usr/bin/env bash
# One set-up for a fresh machine: a virtualenv in .venv with torch, fairseq, this package and
# (with --test) the test tools. Re-running it is cheap: it skips steps whose inputs did not change.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${SPANBERT_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3.11}
WANT_TEST=0
[ "${1:-}" = "--test" ] && WANT_TEST=1

log() { echo "[setup] $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV ($($PY --version))"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

# Inputs whose change means "install again": requirements, build files, and the compiled kernel.
stamp_of() { cat "$@" scripts/setup.sh $(ls spanbert_fairseq/data/*.pyx 2>/dev/null) | sha1sum | cut -c1-16; }
STAMP="$VENV/.spanbert-setup"
want="$(stamp_of requirements.txt setup.py pyproject.toml)-$WANT_TEST"
[ $WANT_TEST = 1 ] && want="$(stamp_of requirements.txt requirements-test.txt requirements-test-nodeps.txt setup.py pyproject.toml)-1"

if [ -f "$STAMP" ] && { [ "$(cat "$STAMP")" = "$want" ] || { [ $WANT_TEST = 0 ] && grep -q -- '-1$' "$STAMP"; }; } \
   && "$VENV/bin/python" -c "import spanbert_fairseq" 2>/dev/null; then
  log "environment up to date ($VENV)"
  exit 0
fi

# torch: on a CPU machine a CPU build. TORCH_PIP_ARGS lets a GPU user pick a CUDA index, e.g.
#   TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cu126"
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
  log "installing $TORCH_SPEC ${TORCH_PIP_ARGS:-}"
  # shellcheck disable=SC2086
  "${PIP[@]}" "$TORCH_SPEC" ${TORCH_PIP_ARGS:-}
fi

# fairseq: ve-fairseq ships cp311/cp312 wheels of fairseq 0.12 that import on Python 3.11.
# --no-deps: its requirements pull torchaudio, whose resolvable build here is a CUDA one that
# fails to load and then breaks `import transformers`. requirements.txt lists what it needs.
if ! "$VENV/bin/python" -c "import fairseq" 2>/dev/null; then
  log "installing ve-fairseq==0.12.3 (fairseq 0.12 for Python 3.11)"
  "${PIP[@]}" --no-deps "ve-fairseq==0.12.3"
fi
log "installing requirements.txt (pip may note that ve-fairseq wants torchaudio: that is expected, see README)"
"${PIP[@]}" -r requirements.txt
if [ $WANT_TEST = 1 ]; then
  log "installing requirements-test.txt, requirements-test-nodeps.txt"
  "${PIP[@]}" -r requirements-test.txt
  "${PIP[@]}" --no-deps -r requirements-test-nodeps.txt
fi
if "$VENV/bin/python" -c "import torchaudio" 2>/dev/null; then :; else
  "$VENV/bin/python" -m pip uninstall --quiet -y torchaudio 2>/dev/null || true
fi

log "building and installing spanbert_fairseq (editable, compiles the masking kernel)"
"${PIP[@]}" --no-build-isolation --no-deps -e .
"$VENV/bin/python" -c "import spanbert_fairseq" >/dev/null
echo "$want" > "$STAMP"
log "done: $VENV ($("$VENV/bin/python" -c 'import torch, fairseq; print("torch", torch.__version__, "fairseq", fairseq.__version__)' 2>/dev/null))"
