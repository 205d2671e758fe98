// Device-side random weights: the same counter-based normal values as the CPU fill (engine/random_fill.h), made
// where they live, so a 7B-shaped model needs no host staging buffer and no upload.
#include "cuda/common.cuh"
#include "cuda/fill.h"
#include "engine/random_fill.h"

namespace tf::cuda {

namespace {

__global__ void fill_normal_kernel(float* p, int64_t n, uint64_t key, float std) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) p[i] = std * random_normal(key, i);
}

template <bool F16>
__global__ void fill_normal_half_kernel(uint16_t* p, int64_t n, uint64_t key, float std) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = std * random_normal(key, i);
    p[i] = F16 ? f32_to_f16_bits(v) : f32_to_bf16_bits(v);  // common.cuh: engine/bf16.h on the device
  }
}

}  // namespace

void fill_normal(float* p, int64_t n, uint64_t key, float std) {
  if (n <= 0) return;
  fill_normal_kernel<<<grid_for(n), kThreads>>>(p, n, key, std);
  CUDA_LAUNCH_CHECK("fill_normal");
}

void fill_normal_bf16(uint16_t* p, int64_t n, uint64_t key, float std) {
  if (n <= 0) return;
  fill_normal_half_kernel<false><<<grid_for(n), kThreads>>>(p, n, key, std);
  CUDA_LAUNCH_CHECK("fill_normal_bf16");
}

void fill_normal_f16(uint16_t* p, int64_t n, uint64_t key, float std) {
  if (n <= 0) return;
  fill_normal_half_kernel<true><<<grid_for(n), kThreads>>>(p, n, key, std);
  CUDA_LAUNCH_CHECK("fill_normal_f16");
}

}  // namespace tf::cuda
