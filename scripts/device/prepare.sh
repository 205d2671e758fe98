#!/usr/bin/env bash
# Run HERE (the development machine, with node_modules) before a GPU session: makes everything the GPU machine
# needs that is not in the repository, under the git-ignored .devkit/:
#   .devkit/{node.xz,napi,reference,fixtures,prelude.sh}  ../shared/device/pack.sh (Node.js, headers, peers, fixtures)
#   .devkit/gpu/*.test.mjs, .devkit/bench/gpu.mjs         the GPU tests and bench:gpu, bundled (no node_modules there)
#   .devkit/hf-check/                                    the tiny model and every fixture model, each with our adapter,
#                                                        merged folder and engine logits, for check_hf.py (transformers
#                                                        + PEFT load what we write)
# Then, with the device tool: carry [".devkit", "node_modules/node-addon-api"] and run
#   source .devkit/prelude.sh && BENCH_BUDGET_S=0 bash scripts/device/run-gpu.sh     (build, tests, HF check)
#   source .devkit/prelude.sh && bash scripts/device/bench-gpu.sh                   (benchmark + HF peers)
#   source .devkit/prelude.sh && bash scripts/device/ncu-gpu.sh                     (Nsight Compute, optional)
set -euo pipefail
cd "$(dirname "$0")/../.."
bash ../shared/device/pack.sh
node scripts/device/bundle-gpu-tests.mjs
# The bundles run on the GPU machine with no node_modules: try them here first, from outside the repository, on
# the CUDA emulator (native/cuda/emu; built by npm test, or by TUNEFORGE_CUDA=emu native/build-standalone.sh).
if [ -f build/emu/tuneforge_native.node ]; then
  check=$(mktemp -d)
  cp -r .devkit/gpu "$check/"
  (cd "$check" && TUNEFORGE_NATIVE="$OLDPWD/build/emu/tuneforge_native.node" \
    TUNEFORGE_FIXTURES="$OLDPWD/../shared/fixtures" TUNEFORGE_CUDA_EMU_MEMORY=$((1 << 30)) \
    node --test --test-reporter=dot gpu/kernels.test.mjs gpu/model.test.mjs) ||
    { echo "prepare: the bundled GPU tests fail on the CUDA emulator (above): fix that before using device time"; exit 1; }
  rm -rf "$check"
else
  echo "prepare: no build/emu addon, the bundled GPU tests were not tried on the CUDA emulator"
fi
rm -rf .devkit/hf-check
TUNEFORGE_HOME=$(mktemp -d) npx tsx scripts/device/make-hf-check.ts .devkit/hf-check
du -sh .devkit node_modules/node-addon-api
