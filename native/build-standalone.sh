#!/usr/bin/env bash
# Builds build/Release/tuneforge_native.node with g++ (+ nvcc) directly, for machines without node-gyp (the GPU
# machine: see ../shared/device/README.md). Run from the repository root:
#   NAPI_INCLUDE=/path/to/node-api-headers bash native/build-standalone.sh
# Needs: g++ (C++17, OpenMP); the Node-API C headers in $NAPI_INCLUDE (node_api.h, js_native_api.h, ...); the
# header-only C++ wrapper node-addon-api in $NODE_ADDON_API (default node_modules/node-addon-api).
# CUDA: built when $CUDA_HOME/bin/nvcc (default /usr/local/cuda) and cuBLAS/cuBLASLt headers and libraries
# are found (in $CUDA_HOME or $CUDA_CUBLAS_INCLUDE / $CUDA_CUBLAS_LIB); TUNEFORGE_CUDA=0 forces CPU only,
# TUNEFORGE_CUDA=1 makes a missing CUDA an error. TUNEFORGE_CUDA_ARCH="80 90" picks the SM targets.
# TUNEFORGE_CUDA=emu builds the CUDA backend against the CPU emulator of native/cuda/emu (g++ only, no GPU, no
# CUDA toolkit) into build/emu/tuneforge_native.node: it runs the CUDA code's logic, slowly, for tests.
# OUT_NODE overrides the output path. Sources: every .cc under native/{,cpu,engine,cuda} (what binding.gyp
# lists) and, with CUDA, every native/cuda/*.cu.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build-standalone: $*" >&2; exit 1; }
[ -n "${NAPI_INCLUDE:-}" ] && [ -f "$NAPI_INCLUDE/node_api.h" ] || die "set NAPI_INCLUDE to a folder with node_api.h"
ADDON_API=${NODE_ADDON_API:-node_modules/node-addon-api}
[ -f "$ADDON_API/napi.h" ] || die "node-addon-api not found at $ADDON_API (set NODE_ADDON_API)"
OUT_NODE=${OUT_NODE:-build/Release/tuneforge_native.node}
OBJ=build/standalone
if [ "${TUNEFORGE_CUDA:-}" = emu ]; then
  OUT_NODE=${OUT_NODE/#build\/Release\//build/emu/}
  OBJ=build/emu-obj
fi
JOBS=${JOBS:-$(nproc)}

# ---- CUDA detection (the same rule as native/find-cuda.mjs: nvcc alone is not enough) ----
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
first_dir_with() {  # first_dir_with "file1 file2" dir... -> the first dir holding all the files
  local files=$1; shift
  for d in "$@"; do
    [ -n "$d" ] || continue
    local ok=1
    for f in $files; do [ -e "$d/$f" ] || ok=0; done
    [ $ok = 1 ] && { echo "$d"; return 0; }
  done
  return 1
}
cuda=0
if [ "${TUNEFORGE_CUDA:-}" != "0" ] && [ "${TUNEFORGE_CUDA:-}" != emu ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then
  inc=$(first_dir_with "cublas_v2.h cublasLt.h" "${CUDA_CUBLAS_INCLUDE:-}" "$CUDA_HOME/include" \
    "$CUDA_HOME/targets/x86_64-linux/include" /usr/include) || inc=
  lib=$(first_dir_with "libcublas.so libcublasLt.so" "${CUDA_CUBLAS_LIB:-}" "$CUDA_HOME/lib64" \
    "$CUDA_HOME/targets/x86_64-linux/lib" /usr/lib/x86_64-linux-gnu) || lib=
  rtlib=$(first_dir_with "libcudart.so" "$CUDA_HOME/lib64" "$CUDA_HOME/targets/x86_64-linux/lib") || rtlib=
  if [ -n "$inc" ] && [ -n "$lib" ] && [ -n "$rtlib" ]; then cuda=1; fi
fi
if [ "${TUNEFORGE_CUDA:-}" = "1" ] && [ $cuda = 0 ]; then
  die "TUNEFORGE_CUDA=1 but no nvcc with cuBLAS/cuBLASLt under $CUDA_HOME (or CUDA_CUBLAS_INCLUDE/LIB)"
fi

DEFS=(-DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_CPP_EXCEPTIONS -DBUILDING_NODE_EXTENSION
  -DNODE_GYP_MODULE_NAME=tuneforge_native)
CXXFLAGS=(-std=c++17 -O3 -march=native -fopenmp -ffp-contract=fast -fPIC -Wall -Wno-unused-parameter
  -Inative -I"$NAPI_INCLUDE" -I"$ADDON_API" "${DEFS[@]}")
LIBS=()
if [ $cuda = 1 ]; then
  CXXFLAGS+=(-DTUNEFORGE_CUDA=1)
  GENCODE=()
  archs=(${TUNEFORGE_CUDA_ARCH:-80 90})
  for a in "${archs[@]}"; do GENCODE+=("-gencode=arch=compute_$a,code=sm_$a"); done
  newest=${archs[${#archs[@]}-1]}
  GENCODE+=("-gencode=arch=compute_$newest,code=compute_$newest")  # PTX for newer GPUs
  NVCCFLAGS=(-std=c++17 -O3 -Xcompiler=-fPIC "${GENCODE[@]}" -Inative -I"$CUDA_HOME/include" -I"$inc"
    -DTUNEFORGE_CUDA=1)
  LIBS=(-L"$lib" -L"$rtlib" -lcublas -lcublasLt -lcudart -Wl,-rpath,"$lib" -Wl,-rpath,"$rtlib")
  echo "build-standalone: CUDA backend (nvcc $CUDA_HOME/bin/nvcc, cuBLAS $inc, $lib; sm ${archs[*]})"
elif [ "${TUNEFORGE_CUDA:-}" = emu ]; then
  # The emulator's headers stand in for cuda_runtime.h and cublas_v2.h; -O1 keeps the compile short.
  CXXFLAGS=("${CXXFLAGS[@]/-O3/-O1}" -Inative/cuda/emu/include -DTUNEFORGE_CUDA=1 -DTUNEFORGE_CUDA_EMU=1)
  echo "build-standalone: CUDA backend on the CPU emulator (native/cuda/emu)"
else
  echo "build-standalone: CPU backend only"
fi

rm -rf "$OBJ"
mkdir -p "$OBJ" "$(dirname "$OUT_NODE")"
shopt -s nullglob
CC_SRCS=(native/*.cc native/cpu/*.cc native/engine/*.cc native/cuda/*.cc)
CU_SRCS=()
[ $cuda = 1 ] && CU_SRCS=(native/cuda/*.cu)
if [ "${TUNEFORGE_CUDA:-}" = emu ]; then
  CC_SRCS+=(native/cuda/emu/*.cc)
  mkdir -p "$OBJ/cu"
  for src in native/cuda/*.cu; do
    out="$OBJ/cu/$(basename "${src%.cu}").cc"
    node native/cuda/emu/translate.mjs "$src" "$out" >/dev/null || die "could not translate $src"
    CC_SRCS+=("$out")
  done
fi

# One compile per file, $JOBS at a time; the first failure stops the build with the compiler's message.
pids=()
objs=()
run() {  # run <obj> <command...>
  local obj=$1; shift
  objs+=("$obj")
  ( "$@" 2>"$obj.log" || { echo "FAILED: $*" >>"$obj.log"; exit 1; } ) &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then wait_all; fi
}
failed=0
wait_all() {
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  pids=()
}
for src in "${CC_SRCS[@]}"; do
  obj="$OBJ/$(echo "${src%.cc}" | tr / _).o"
  run "$obj" g++ "${CXXFLAGS[@]}" -c "$src" -o "$obj"
done
for src in "${CU_SRCS[@]}"; do
  obj="$OBJ/$(echo "${src%.cu}" | tr / _)_cu.o"
  run "$obj" "$CUDA_HOME/bin/nvcc" "${NVCCFLAGS[@]}" -c "$src" -o "$obj"
done
wait_all
for o in "${objs[@]}"; do [ -s "$o.log" ] && cat "$o.log" >&2; done
[ $failed = 0 ] || die "compilation failed (messages above)"

g++ -shared -o "$OUT_NODE" "${objs[@]}" -fopenmp "${LIBS[@]}"
echo "build-standalone: wrote $OUT_NODE ($(( $(stat -c %s "$OUT_NODE") / 1024 )) KiB, ${#CC_SRCS[@]} C++ + ${#CU_SRCS[@]} CUDA files)"
