#!/usr/bin/env bash
# What a session that is lent a GPU runs there (see the README of the device tool): the unit tests
# on CUDA, the training/inference throughput benchmark, and the full presets of the reproductions.
#
# The device machine has Python 3.12 + torch but no pytest/hypothesis and reaches no registry, so
# prepare their pure-Python wheels here and carry them:
#   .venv/bin/pip install --quiet --target .gpu_deps pytest hypothesis
#   run(command="bash benchmarks/gpu_session.sh tests", carry=[".gpu_deps"])
#   run(command="bash benchmarks/gpu_session.sh bench")
#   run(command="bash benchmarks/gpu_session.sh reproduce NAME")   # writes $OUT/results/NAME.json
set -euo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -d .gpu_deps ] && export PYTHONPATH="$PYTHONPATH:$PWD/.gpu_deps"
OUT="${OUT:-/tmp/softseg-out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

case "${1:-}" in
  tests)
    # Everything but the notebook/book/browser tests, which need Jupyter and a browser.
    python3 -m pytest -q -p no:cacheprovider \
      --ignore=tests/test_notebooks.py --ignore=tests/test_book_build.py \
      --ignore=tests/test_browser.py --ignore=tests/test_book_structure.py 2>&1 | tee "$OUT/pytest-cuda.txt" | tail -40
    ;;
  bench)
    python3 benchmarks/train.py --compile --engine 2>&1 | tee "$OUT/bench-train.txt"
    ;;
  reproduce)
    name="${2:?reproduce NAME}"
    python3 -m softseg reproduce "$name" --preset full ${3:+--data "$3"} --out "$OUT/results" 2>&1 \
      | tee "$OUT/reproduce-$name.txt" | tail -40
    ;;
  *)
    echo "usage: $0 tests|bench|reproduce NAME [DATA]" >&2; exit 2 ;;
esac
