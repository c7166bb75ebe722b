#!/usr/bin/env bash
# What a session that is lent a GPU runs there (see the README of the device tool): the unit tests
# on CUDA, the training/inference throughput benchmark, the cost of the full presets, and the full
# presets of the reproductions, one time-budgeted command after another.
#
# The device machine has Python 3.12 + torch but no pytest/hypothesis and reaches no registry, so
# prepare their pure-Python wheels here and carry them:
#   .venv/bin/pip install --quiet --target .gpu_deps pytest hypothesis
#   run(command="bash benchmarks/gpu_session.sh tests", carry=[".gpu_deps"])
#   run(command="bash benchmarks/gpu_session.sh bench")
#   run(command="bash benchmarks/gpu_session.sh plan")      # measured cost: epochs that fit a budget
#   run(command="bash benchmarks/gpu_session.sh reproduce NAME [EPOCHS [DATA]]")
#
# `reproduce` stops before the 10-minute command limit (--time-budget) and exits 3 when training
# runs are left; the finished runs come back in $OUT/results/runs/NAME. Bring them into the
# checkout at once with `bash benchmarks/collect_gpu_results.sh FILES_AT` (commit them: a later
# session, or the next command, continues from them) and give the same command again; the last one
# writes $OUT/results/NAME.json, which the same script puts in place (the fast run to results/fast/).
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
    # the losses on the GPU: time, and host synchronisations of the argument checks per call
    python3 benchmarks/losses.py --device cuda --repeats 20 2>&1 | tee "$OUT/bench-losses.txt"
    ;;
  plan)
    python3 benchmarks/full_presets.py --measure --budget "${2:-20}" 2>&1 | tee "$OUT/plan.txt"
    ;;
  reproduce)
    # The runs folder lives in the checkout: its *.pt (margin-calibration's pre-trained weights,
    # git-ignored) stay on the device between commands while it is warm; the run files go to $OUT.
    name="${2:?reproduce NAME [EPOCHS [DATA]]}"
    runs="results/runs/$name"
    status=0
    python3 -m softseg reproduce "$name" --preset full --time-budget "${BUDGET_MIN:-8}" --runs-dir "$runs" \
      ${3:+--epochs "$3"} ${4:+--data "$4"} --out "$OUT/results" 2>&1 \
      | tee "$OUT/reproduce-$name.txt" | tail -40 || status=$?
    if [ -d "$runs" ]; then mkdir -p "$OUT/results/runs/$name" && cp "$runs"/*.json "$OUT/results/runs/$name/"; fi
    exit "$status"
    ;;
  *)
    echo "usage: $0 tests|bench|plan [BUDGET_MIN]|reproduce NAME [EPOCHS [DATA]]" >&2; exit 2 ;;
esac
