# Sourced by the GPU scripts: build for this machine's GPU only (compute capability 9.0 -> sm 90), half the compile of
# the default "80 90", unless TUNEFORGE_CUDA_ARCH is already set.
if [ -z "${TUNEFORGE_CUDA_ARCH:-}" ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
  [[ "$cc" =~ ^[0-9]+$ ]] && export TUNEFORGE_CUDA_ARCH=$cc
fi
