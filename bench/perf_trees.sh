#!/usr/bin/env bash
# Two source trees for an A/B run of bench/perf_cpu.py (--tree A=... --tree B=...):
# A is commit BASE as committed; B is the same commit with the given files taken from
# this checkout (so others' uncommitted work in the checkout is in neither).
#   bench/perf_trees.sh BASE OUT_DIR [FILE...]      -> OUT_DIR/A, OUT_DIR/B
set -euo pipefail
cd "$(dirname "$0")/.."
base=$1 out=$2
shift 2
rm -rf "$out/A" "$out/B"
mkdir -p "$out/A" "$out/B"
git archive "$base" | tar -x -C "$out/A"
git archive "$base" | tar -x -C "$out/B"
for f in "$@"; do
  mkdir -p "$out/B/$(dirname "$f")"
  cp "$f" "$out/B/$f"
done
echo "$out/A $out/B"
