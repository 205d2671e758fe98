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

// engine/bf16.h's f32_to_bf16 (round to nearest, ties to even; NaN stays a quiet NaN) on the device.
__device__ inline uint16_t to_bf16(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__global__ void fill_normal_bf16_kernel(uint16_t* p, int64_t n, uint64_t key, float std) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    p[i] = to_bf16(std * random_normal(key, i));
}

}  // namespace

void fill_normal(float* p, int64_t n, uint64_t key, float std) {
  if (n <= 0) return;
  fill_normal_kernel<<<grid_for(n), kThreads>>>(p, n, key, std);
  CUDA_LAUNCH_CHECK("fill_normal");
}

void fill_normal_bf16(uint16_t* p, int64_t n, uint64_t key, float std) {
  if (n <= 0) return;
  fill_normal_bf16_kernel<<<grid_for(n), kThreads>>>(p, n, key, std);
  CUDA_LAUNCH_CHECK("fill_normal_bf16");
}

}  // namespace tf::cuda
