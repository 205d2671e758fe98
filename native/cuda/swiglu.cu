// SwiGLU MLP activation, out = silu(g) * u, in float as native/cpu/swiglu.cc (no double: consumer GPUs run fp64 at
// 1/64 of the fp32 rate, where a double exp per element would make this pass compute-bound).
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/lora_up.cuh"

namespace tf::cuda {

namespace {

// 1 / (1 + exp(-x)) from exp(-|x|), so the exp never overflows (cpu/vec_f32.h's sigmoid).
__device__ inline float sigmoid(float x) {
  const float e = expf(x < 0 ? x : -x);
  const float r = 1.0f / (1.0f + e);
  return x >= 0 ? r : e * r;
}

// g, u: fp32, or bf16 (backward in bf16 mode reads the saved ones as they are); out: fp32, or bf16 rounded to nearest
// even (bf16 mode's down_proj input).
template <typename TI, typename TO>
__global__ void swiglu_fwd_kernel(const TI* g, const TI* u, int64_t n, TO* out, uint16_t* g16, uint16_t* u16) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float gf = as_float(g[i]), uf = as_float(u[i]);
    out[i] = from_float<TO>(gf * sigmoid(gf) * uf);
    if (g16) g16[i] = f32_to_bf16_bits(gf);
    if (u16) u16[i] = f32_to_bf16_bits(uf);
  }
}

// The same for g and u side by side in each row of gu (columns [0, inter) and [inter, 2 inter)), each with its bias and
// LoRA added as it is read (a decoding step's gate/up product).
template <typename TO>
__global__ void swiglu_fwd_stacked_kernel(const float* gu, int inter, int64_t n, TO* out, ReaderUps ups) {
  wait_for_previous_grid();  // launched chained (common.cuh)
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = i / inter;
    const int c = (int)(i % inter);
    const float* y = gu + row * 2 * inter;
    const float gf = with_up(y[c], up_of(ups.ups, 0), ups, row, c);
    const float uf = with_up(y[inter + c], up_of(ups.ups, 1), ups, row, c);
    out[i] = from_float<TO>(gf * sigmoid(gf) * uf);
  }
}

// d silu(g)/dg = sig * (1 + g * (1 - sig)). dg, du in g's and u's type (may be g and u: each element is read first).
template <typename T>
__global__ void swiglu_bwd_kernel(const T* g, const T* u, const float* dout, int64_t n, T* dg, T* du) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float gv = as_float(g[i]), uv = as_float(u[i]), dv = dout[i];
    const float s = sigmoid(gv);
    du[i] = from_float<T>(dv * gv * s);
    dg[i] = from_float<T>(dv * uv * s * (1.0f + gv * (1.0f - s)));
  }
}

}  // namespace

template <typename TI, typename TO>
void swiglu_fwd(const TI* g, const TI* u, int64_t n, TO* out, cudaStream_t s, uint16_t* g16, uint16_t* u16) {
  if (n <= 0) return;
  swiglu_fwd_kernel<TI, TO><<<grid_for(n), kThreads, 0, s>>>(g, u, n, out, g16, u16);
  CUDA_LAUNCH_CHECK("swiglu_fwd_kernel");
}
template void swiglu_fwd(const float*, const float*, int64_t, float*, cudaStream_t, uint16_t*, uint16_t*);
template void swiglu_fwd(const float*, const float*, int64_t, uint16_t*, cudaStream_t, uint16_t*, uint16_t*);
template void swiglu_fwd(const uint16_t*, const uint16_t*, int64_t, uint16_t*, cudaStream_t, uint16_t*, uint16_t*);

template <typename TO>
void swiglu_fwd_stacked(const float* gu, int N, int inter, TO* out, const LoraUps& ups, cudaStream_t s) {
  const int64_t n = (int64_t)N * inter;
  if (n <= 0) return;
  launch_chained("swiglu_fwd_stacked_kernel", swiglu_fwd_stacked_kernel<TO>, grid_for(n), kThreads, 0, s, gu, inter, n,
                 out, reader_ups(ups));
}
template void swiglu_fwd_stacked(const float*, int, int, float*, const LoraUps&, cudaStream_t);
template void swiglu_fwd_stacked(const float*, int, int, uint16_t*, const LoraUps&, cudaStream_t);

template <typename T>
void swiglu_bwd(const T* g, const T* u, const float* dout, int64_t n, T* dg, T* du, cudaStream_t s) {
  if (n <= 0) return;
  swiglu_bwd_kernel<T><<<grid_for(n), kThreads, 0, s>>>(g, u, dout, n, dg, du);
  CUDA_LAUNCH_CHECK("swiglu_bwd_kernel");
}
template void swiglu_bwd(const float*, const float*, const float*, int64_t, float*, float*, cudaStream_t);
template void swiglu_bwd(const uint16_t*, const uint16_t*, const float*, int64_t, uint16_t*, uint16_t*, cudaStream_t);

}  // namespace tf::cuda
