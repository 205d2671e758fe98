#!/usr/bin/env bash
# On the GPU machine, from the repository root, after run-gpu.sh built the addon:
#   source .devkit/prelude.sh && OUT=$OUT bash scripts/device/ncu-gpu.sh
# Nsight Compute on the first kernels of one Qwen3-0.6B training step whose names match NCU_KERNELS (default: the mma
# attention and LoRA kernels): achieved occupancy, memory and tensor-pipe throughput, stall reasons. The per-kernel
# profile of bench:gpu says how long each kernel takes; this says why. Writes $OUT/ncu.txt. (Not yet run on a GPU:
# session 13's loan ended before it was written.)
# NCU_LAUNCHES kernels are profiled (default 12), each replayed once per metric pass; NCU_TIMEOUT_S caps the run.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
command -v ncu >/dev/null 2>&1 || { echo "ncu-gpu: no ncu on PATH (the CUDA toolkit's Nsight Compute)"; exit 1; }
bundle=.devkit/bench/gpu.mjs
[ -f "$bundle" ] || { echo "ncu-gpu: no $bundle (run node scripts/device/bundle-gpu-tests.mjs before sending)"; exit 1; }
export TUNEFORGE_NATIVE=${TUNEFORGE_NATIVE:-$PWD/build/Release/tuneforge_native.node}
[ -f "$TUNEFORGE_NATIVE" ] || { echo "ncu-gpu: no addon at $TUNEFORGE_NATIVE (run run-gpu.sh first)"; exit 1; }
# One timed step, no warm-up, no peers and no profile of our own: the first matching launches are the step's first
# layers (LoRA's down- and up-projections, attention forward, then backward's).
timeout "${NCU_TIMEOUT_S:-240}" ncu --kernel-name "regex:${NCU_KERNELS:-attention_mma|lora_}" \
  --launch-count "${NCU_LAUNCHES:-12}" --set full \
  node "$bundle" --device cuda --only qwen3-0.6b --ckpt off --steps 1 --warmup 0 --no-peers --no-profile \
  --budget-s 120 --out "$OUT/ncu-bench.json" >"$OUT/ncu.txt" 2>&1
rc=$?
grep -E "^  [a-z_].*\(|Duration|Achieved Occupancy|Compute \(SM\) Throughput|Memory Throughput" "$OUT/ncu.txt" | head -80
echo "ncu-gpu: exit $rc; the full report is $OUT/ncu.txt"
exit $rc
