#!/usr/bin/env bash
# On the GPU machine, from the repository root: the GPU benchmark (`npm run bench:gpu`, issue 4) with its HF peers,
# inside a wall-clock budget, as one command. run-gpu.sh runs it as its last stage; alone (e.g. in its own device
# call, after run-gpu.sh built the addon):
#   source .devkit/prelude.sh && OUT=$OUT BENCH_BUDGET_S=420 bash scripts/device/bench-gpu.sh [bench args...]
# Needs .devkit/bench/gpu.mjs (made here by node scripts/device/bundle-gpu-tests.mjs) and .devkit/reference (pack.sh).
# Builds the addon when build/Release/tuneforge_native.node is missing. Writes $OUT/bench-gpu.json (rewritten
# after every case, "complete": true at the end) and the progress log $OUT/bench-gpu.log.
# Extra arguments go to the benchmark, e.g. --only qwen3-0.6b,generate or --no-peers (bench/gpu.ts lists them).
# Exit status: 0 when the benchmark wrote its complete JSON (cases that ran out of memory or budget included).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
budget=${BENCH_BUDGET_S:-420}
bundle=.devkit/bench/gpu.mjs
if [ ! -f "$bundle" ]; then
  echo "no $bundle (run node scripts/device/bundle-gpu-tests.mjs before sending)"
  exit 1
fi
export TUNEFORGE_NATIVE=${TUNEFORGE_NATIVE:-$PWD/build/Release/tuneforge_native.node}
source scripts/device/gpu-arch.sh
if [ ! -f "$TUNEFORGE_NATIVE" ]; then
  echo "== build (no addon at $TUNEFORGE_NATIVE)"
  TUNEFORGE_CUDA=1 bash native/build-standalone.sh >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }
fi

echo "== benchmark (budget ${budget} s)"
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$OUT/bench-nvidia-smi.csv"
# The budget is checked between steps and cases; one step or peer may overrun it, so the hard limit is wider
# (420 + 150 s stays under the 10 minutes one device call may run; the JSON is rewritten after every case).
timeout -k 10 $((budget + 150)) node "$bundle" --device cuda --budget-s "$budget" --peer-dir .devkit/reference \
  --out "$OUT/bench-gpu.json" "$@" >"$OUT/bench-gpu.stdout" 2> >(tee "$OUT/bench-gpu.log" >&2)
rc=$?
if [ -f "$OUT/bench-gpu.json" ]; then
  node -e 'const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")); console.log(`complete: ${r.complete}`); for (const l of r.summary) console.log("  " + l)' \
    "$OUT/bench-gpu.json"
else
  echo "the benchmark wrote no results (exit $rc); see $OUT/bench-gpu.log"
  exit 1
fi
[ $rc = 0 ] || { echo "the benchmark exited $rc before it finished; $OUT/bench-gpu.json holds the cases that ran"; exit 1; }
exit 0
