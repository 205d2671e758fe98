// Embedding lookup (row gather) and its gradient (row scatter-add), on device ids.
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace tf::cuda {

namespace {

__global__ void embedding_fwd_kernel(const float* table, const int32_t* ids, int N, int C, float* out) {
  const int64_t n = (int64_t)N * C;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = i / C, c = i % C;
    out[i] = table[(int64_t)ids[row] * C + c];
  }
}

// A half table (bf16 or fp16 bits, F16 picks which), widened exactly.
template <bool F16>
__global__ void embedding_fwd_half_kernel(const uint16_t* table, const int32_t* ids, int N, int C, float* out) {
  const int64_t n = (int64_t)N * C;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = i / C, c = i % C;
    const uint16_t h = table[(int64_t)ids[row] * C + c];
    out[i] = F16 ? f16_bits_to_f32(h) : bf16_bits_to_f32(h);
  }
}

// Deterministic without atomics: each thread owns one column of the whole table and adds the rows in input
// order, exactly like the CPU loop, so repeated ids accumulate in the same order (bitwise equal results).
__global__ void embedding_bwd_kernel(float* table_grad, const int32_t* ids, int N, int C, const float* d) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (int i = 0; i < N; i++) table_grad[(int64_t)ids[i] * C + c] += d[(int64_t)i * C + c];
}

}  // namespace

void embedding_fwd(const float* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s) {
  const int64_t n = (int64_t)N * C;
  if (n <= 0) return;
  embedding_fwd_kernel<<<grid_for(n), kThreads, 0, s>>>(table, ids, N, C, out);
  CUDA_LAUNCH_CHECK("embedding_fwd_kernel");
}

void embedding_fwd_bf16(const uint16_t* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s) {
  const int64_t n = (int64_t)N * C;
  if (n <= 0) return;
  embedding_fwd_half_kernel<false><<<grid_for(n), kThreads, 0, s>>>(table, ids, N, C, out);
  CUDA_LAUNCH_CHECK("embedding_fwd_bf16_kernel");
}

void embedding_fwd_f16(const uint16_t* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s) {
  const int64_t n = (int64_t)N * C;
  if (n <= 0) return;
  embedding_fwd_half_kernel<true><<<grid_for(n), kThreads, 0, s>>>(table, ids, N, C, out);
  CUDA_LAUNCH_CHECK("embedding_fwd_f16_kernel");
}

void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d, cudaStream_t s) {
  if (N <= 0 || C <= 0) return;
  embedding_bwd_kernel<<<(C + kThreads - 1) / kThreads, kThreads, 0, s>>>(table_grad, ids, N, C, d);
  CUDA_LAUNCH_CHECK("embedding_bwd_kernel");
}

}  // namespace tf::cuda
