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

// 16 bytes per load where the rows allow it (C a multiple of the vector, table and output 16-byte aligned): the table
// may be pinned host memory read over the bus (Model::embedding_table), where a warp's 512-byte request moves the row
// in far fewer transactions than 64- or 128-byte ones. The values are the scalar kernels', widened exactly.
__global__ void embedding_fwd_vec_kernel(const float4* table, const int32_t* ids, int N, int C4, float4* out) {
  const int64_t n = (int64_t)N * C4;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = i / C4, c = i % C4;
    out[i] = table[(int64_t)ids[row] * C4 + c];
  }
}

template <bool F16>
__global__ void embedding_fwd_half_vec_kernel(const uint4* table, const int32_t* ids, int N, int C8, float4* out) {
  const int64_t n = (int64_t)N * C8;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = i / C8, c = i % C8;
    const uint4 v = table[(int64_t)ids[row] * C8 + c];
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
    float f[8];
    for (int k = 0; k < 4; k++) {
      const uint16_t lo = (uint16_t)(w[k] & 0xffffu), hi = (uint16_t)(w[k] >> 16);
      f[2 * k] = F16 ? f16_bits_to_f32(lo) : bf16_bits_to_f32(lo);
      f[2 * k + 1] = F16 ? f16_bits_to_f32(hi) : bf16_bits_to_f32(hi);
    }
    out[2 * i] = float4{f[0], f[1], f[2], f[3]};
    out[2 * i + 1] = float4{f[4], f[5], f[6], f[7]};
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

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
  if (C % 4 == 0 && aligned16(table) && aligned16(out)) {
    embedding_fwd_vec_kernel<<<grid_for(n / 4), kThreads, 0, s>>>(reinterpret_cast<const float4*>(table), ids, N,
                                                                   C / 4, reinterpret_cast<float4*>(out));
    CUDA_LAUNCH_CHECK("embedding_fwd_vec_kernel");
    return;
  }
  embedding_fwd_kernel<<<grid_for(n), kThreads, 0, s>>>(table, ids, N, C, out);
  CUDA_LAUNCH_CHECK("embedding_fwd_kernel");
}

namespace {
template <bool F16>
void embedding_fwd_half(const uint16_t* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s) {
  const int64_t n = (int64_t)N * C;
  if (n <= 0) return;
  if (C % 8 == 0 && aligned16(table) && aligned16(out)) {
    embedding_fwd_half_vec_kernel<F16><<<grid_for(n / 8), kThreads, 0, s>>>(
        reinterpret_cast<const uint4*>(table), ids, N, C / 8, reinterpret_cast<float4*>(out));
    CUDA_LAUNCH_CHECK(F16 ? "embedding_fwd_f16_vec_kernel" : "embedding_fwd_bf16_vec_kernel");
    return;
  }
  embedding_fwd_half_kernel<F16><<<grid_for(n), kThreads, 0, s>>>(table, ids, N, C, out);
  CUDA_LAUNCH_CHECK(F16 ? "embedding_fwd_f16_kernel" : "embedding_fwd_bf16_kernel");
}
}  // namespace

void embedding_fwd_bf16(const uint16_t* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s) {
  embedding_fwd_half<false>(table, ids, N, C, out, s);
}

void embedding_fwd_f16(const uint16_t* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s) {
  embedding_fwd_half<true>(table, ids, N, C, out, s);
}

void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d, cudaStream_t s) {
  if (N <= 0 || C <= 0) return;
  embedding_bwd_kernel<<<(C + kThreads - 1) / kThreads, kThreads, 0, s>>>(table_grad, ids, N, C, d);
  CUDA_LAUNCH_CHECK("embedding_bwd_kernel");
}

}  // namespace tf::cuda
