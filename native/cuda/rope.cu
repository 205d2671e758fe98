// Rotary position embedding, HF "rotate_half" layout, as native/cpu/rope.cc: the angle is formed in fp32
// (pos * inv_freq, as HF does) and its cos/sin evaluated in double, once per batch (rope_table).
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace tf::cuda {

namespace {

__global__ void rope_table_kernel(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs) {
  const int half = hd / 2;
  const int64_t n = (int64_t)N * half;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = idx / half;
    const int j = (int)(idx % half);
    const float angle = __fmul_rn((float)pos[i], inv_freq[j]);
    cs[i * hd + j] = (float)cos((double)angle);
    cs[i * hd + half + j] = (float)sin((double)angle);
  }
}

// One thread per rotated pair (token i, head h, j < hd/2).
__global__ void rope_kernel(float* x, const float* cs, int N, int heads, int hd, float sign) {
  const int half = hd / 2;
  const int64_t n = (int64_t)N * heads * half;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int j = (int)(idx % half);
    const int64_t ih = idx / half;  // token * heads + head
    const int64_t i = ih / heads;
    const float c = cs[i * hd + j], sj = sign * cs[i * hd + half + j];
    float* xh = x + ih * hd;
    const float a = xh[j], b = xh[j + half];
    xh[j] = a * c - b * sj;
    xh[j + half] = b * c + a * sj;
  }
}

}  // namespace

void rope_table(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs, cudaStream_t s) {
  const int64_t n = (int64_t)N * (hd / 2);
  if (n <= 0) return;
  rope_table_kernel<<<grid_for(n), kThreads, 0, s>>>(pos, inv_freq, N, hd, cs);
  CUDA_LAUNCH_CHECK("rope_table_kernel");
}

void rope(float* x, const float* cs, int N, int heads, int hd, bool inverse, cudaStream_t s) {
  const int64_t n = (int64_t)N * heads * (hd / 2);
  if (n <= 0) return;
  rope_kernel<<<grid_for(n), kThreads, 0, s>>>(x, cs, N, heads, hd, inverse ? -1.0f : 1.0f);
  CUDA_LAUNCH_CHECK("rope_kernel");
}

}  // namespace tf::cuda
