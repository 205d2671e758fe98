#!/usr/bin/env bash
# On the GPU machine, from the repository root (with .devkit/ and node_modules/node-addon-api carried along):
#   source .devkit/prelude.sh && bash scripts/device/run-gpu.sh
# Builds the addon with the CUDA backend (native/build-standalone.sh), prints cudaInfo, runs the bundled GPU
# tests (.devkit/gpu/*.test.mjs, made here by scripts/device/bundle-gpu-tests.mjs) and the raw kernel check,
# runs scripts/device/check_hf.py on .devkit/hf-check (transformers + PEFT load the tiny and fixture models, our
# adapters and merged folders and match our engine's logits; also runnable here: scripts/dev/hf-check-sid.sh), the GPU benchmark with its HF peers (scripts/device/bench-gpu.sh, budget
# BENCH_BUDGET_S seconds, default 420; 0 leaves it out) and, when compute-sanitizer exists, a memcheck pass over
# every kernel (SANITIZERS below picks other passes). Everything lands in $OUT.
# One device call may run 10 minutes: with the build and tests, give the benchmark its own call, e.g.
#   BENCH_BUDGET_S=0 bash scripts/device/run-gpu.sh        then        bash scripts/device/bench-gpu.sh
# Exit status: 0 only when the build and every test passed (and the benchmark, when run, wrote its results).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
status=0

echo "== device"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv 2>&1 | tee "$OUT/nvidia-smi.csv"

source scripts/device/gpu-arch.sh
echo "== build"
if ! TUNEFORGE_CUDA=1 bash native/build-standalone.sh 2>&1 | tee "$OUT/build.log"; then
  echo "build failed: see $OUT/build.log"
  exit 1
fi
export TUNEFORGE_NATIVE=$PWD/build/Release/tuneforge_native.node

echo "== cudaInfo"
if ! node -e 'console.log(JSON.stringify(require(process.env.TUNEFORGE_NATIVE).cudaInfo(), null, 2))' \
  >"$OUT/cuda-info.json" 2>&1; then
  cat "$OUT/cuda-info.json"
  echo "the addon does not load (above); nothing else can run"
  exit 1
fi
cat "$OUT/cuda-info.json"

echo "== kernel check (raw numbers)"
# A fault inside a kernel is reported at the next CUDA call; with TUNEFORGE_CUDA_SYNC=1 every launch is
# followed by a synchronisation, so a rerun names the kernel that failed.
check='const a = require(process.env.TUNEFORGE_NATIVE);
const r = [1, 2].flatMap((seed) => a.kernelCheck("cuda", seed).map((e) => ({ seed, ...e })));
console.log(JSON.stringify(r, null, 1));'
if ! node -e "$check" >"$OUT/kernel-check.json" 2>"$OUT/kernel-check.err"; then
  status=1
  cat "$OUT/kernel-check.err"
  echo "rerunning with TUNEFORGE_CUDA_SYNC=1"
  TUNEFORGE_CUDA_SYNC=1 node -e "$check" >"$OUT/kernel-check-sync.json" 2>&1 || tail -20 "$OUT/kernel-check-sync.json"
fi
node -e 'for (const e of require(process.argv[1])) console.log(`${e.seed} ${(e.op + "." + e.output).padEnd(28)} ${e.shape.padEnd(44)} rel ${e.maxRel.toExponential(2)} abs ${e.maxAbs.toExponential(2)}`)' \
  "$OUT/kernel-check.json" 2>/dev/null | tee "$OUT/kernel-check.txt"

echo "== GPU tests"
tests=(.devkit/gpu/*.test.mjs)
if [ -e "${tests[0]}" ]; then
  node --test --test-reporter=spec "${tests[@]}" 2>&1 | tee "$OUT/gpu-tests.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
else
  echo "no bundled tests in .devkit/gpu (run node scripts/device/bundle-gpu-tests.mjs before sending)"
  status=1
fi

echo "== HF/PEFT load what tuneforge writes (issue 3)"
# .devkit/hf-check is made here by `tsx scripts/device/make-hf-check.ts .devkit/hf-check` (no torch on this side).
if [ -f .devkit/hf-check/expected.json ]; then
  python3 scripts/device/check_hf.py .devkit/hf-check 2>"$OUT/hf-check.err" | tee "$OUT/hf-check.json"
  [ "${PIPESTATUS[0]}" = 0 ] || { tail -20 "$OUT/hf-check.err"; status=1; }
else
  echo "no .devkit/hf-check (make it with: npx tsx scripts/device/make-hf-check.ts .devkit/hf-check)"
fi

if [ "${BENCH_BUDGET_S:-420}" != 0 ]; then
  echo "== GPU benchmark vs HF PEFT (issue 4)"
  OUT=$OUT bash scripts/device/bench-gpu.sh || status=1
fi

# SANITIZERS: the compute-sanitizer passes, in order (default memcheck: every kernel). The others look at the attention
# kernels (those whose names hold "attention_": the mma, decode, flash and GEMM-path kernels share tiles between
# threads): racecheck (shared-memory hazards), synccheck (barriers under divergence), initcheck (reads of device
# memory never written). Each pass has
# SANITIZER_TIMEOUT_S seconds (default 300); give them a call of their own, e.g.
#   BENCH_BUDGET_S=0 SANITIZERS="racecheck synccheck initcheck" SANITIZER_TIMEOUT_S=150 bash scripts/device/run-gpu.sh
if command -v compute-sanitizer >/dev/null 2>&1; then
  for tool in ${SANITIZERS:-memcheck}; do
    case $tool in
      memcheck) args=(--tool memcheck --leak-check no) ;;
      racecheck | synccheck | initcheck) args=(--tool "$tool" --kernel-name kns=attention_) ;;
      *) echo "SANITIZERS: unknown tool $tool (memcheck, racecheck, synccheck, initcheck)"; status=1; continue ;;
    esac
    echo "== compute-sanitizer $tool"
    timeout "${SANITIZER_TIMEOUT_S:-300}" compute-sanitizer "${args[@]}" --error-exitcode 9 \
      node -e 'require(process.env.TUNEFORGE_NATIVE).kernelCheck("cuda", 3)' >"$OUT/$tool.txt" 2>&1
    rc=$?
    tail -5 "$OUT/$tool.txt"
    [ $rc = 0 ] || { echo "$tool: exit $rc"; status=1; }
  done
fi

echo "== done (status $status); results in $OUT"
exit $status
