#!/usr/bin/env bash
# Bring what `benchmarks/gpu_session.sh reproduce NAME` returned into this checkout, at once (the
# device is released after half a minute idle, and the next piece of the run needs these files):
#
#   bash benchmarks/collect_gpu_results.sh FILES_AT      # the device tool's files_at folder
#
# - finished training runs:  FILES_AT/results/runs/NAME/*.json -> results/runs/NAME/
# - a finished reproduction: FILES_AT/results/NAME.json        -> results/NAME.json, after moving a
#   committed fast run to results/fast/NAME.json; results/runs/NAME/ is then removed.
# Every results file is validated first. Nothing is committed: review `git status`, then commit.
set -euo pipefail
src="${1:?usage: $0 FILES_AT (the folder the device tool returned)}"
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py=python3
cd "$root"

shopt -s nullglob
for dir in "$src"/results/runs/*/; do
  name="$(basename "$dir")"
  mkdir -p "results/runs/$name"
  files=("$dir"*.json)
  if [ ${#files[@]} -gt 0 ]; then cp "${files[@]}" "results/runs/$name/"; fi
  echo "runs: results/runs/$name/ now holds $(ls "results/runs/$name" | wc -l) finished training runs"
done
for file in "$src"/results/*.json; do
  name="$(basename "$file" .json)"
  PYTHONPATH="$root" "$py" -c "import json, sys; from softseg import results; \
results.validate_results(json.load(open(sys.argv[1])), source=sys.argv[1])" "$file"
  if [ -f "results/$name.json" ] && grep -q '"preset": "fast"' "results/$name.json" \
      && grep -q '"preset": "full"' "$file"; then
    mkdir -p results/fast
    mv "results/$name.json" "results/fast/$name.json"
    echo "moved the fast run to results/fast/$name.json"
  fi
  cp "$file" "results/$name.json"
  rm -rf "results/runs/$name"
  echo "results: results/$name.json ($(grep -o '"preset": "[a-z]*"' "$file"))"
done
