// Reductions: bias gradients (column sums), the sum of squares behind gradient-norm clipping (one buffer, or many
// at once) and the per-row argmax of greedy decoding. Sums are in double in a fixed order: no atomics, so the same
// inputs give the same bits on every run.
#include <algorithm>
#include <climits>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace tf::cuda {

namespace {

// One thread per column, rows in order (as the CPU does): adjacent threads read adjacent addresses.
__global__ void bias_grad_kernel(float* gb, const float* dy, int N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double s = 0;
  for (int i = 0; i < N; i++) s += dy[(int64_t)i * C + c];
  gb[c] += (float)s;
}

// Stage 1: a fixed grid of kSumSquaresBlocks blocks; each thread strides over the input, each block writes
// one partial sum. The grid does not depend on the device, so the summation order never changes.
__global__ void sum_squares_partial(const float* x, int64_t n, double* partial) {
  __shared__ double sh[kThreads];
  double s = 0;
  for (int64_t i = blockIdx.x * (int64_t)kThreads + threadIdx.x; i < n; i += (int64_t)kSumSquaresBlocks * kThreads)
    s += (double)x[i] * x[i];
  s = block_sum(s, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Stage 2: one block adds the partials (kSumSquaresBlocks == kThreads).
__global__ void sum_squares_final(double* partial) {
  __shared__ double sh[kThreads];
  const double s = block_sum(partial[threadIdx.x], sh);
  if (threadIdx.x == 0) partial[0] = s;
}
static_assert(kSumSquaresBlocks == kThreads, "stage 2 gives each partial one thread");

// The batched form: blockIdx.y picks the buffer; each buffer is reduced exactly as by the two kernels above
// (same grid, same strides, same tree), so every per-buffer sum is bitwise what sum_squares returns for it.
__global__ void sum_squares_many_partial(const SumSquaresItem* items, double* partial) {
  __shared__ double sh[kThreads];
  const SumSquaresItem it = items[blockIdx.y];
  double s = 0;
  for (int64_t i = blockIdx.x * (int64_t)kThreads + threadIdx.x; i < it.n; i += (int64_t)kSumSquaresBlocks * kThreads)
    s += (double)it.x[i] * it.x[i];
  s = block_sum(s, sh);
  if (threadIdx.x == 0) partial[(int64_t)blockIdx.y * kSumSquaresBlocks + blockIdx.x] = s;
}

__global__ void sum_squares_many_final(const double* partial, double* sums) {
  __shared__ double sh[kThreads];
  const double s = block_sum(partial[(int64_t)blockIdx.x * kSumSquaresBlocks + threadIdx.x], sh);
  if (threadIdx.x == 0) sums[blockIdx.x] = s;
}

// One block per row. Each thread keeps the first maximum of its strided elements; the tree then prefers the larger
// value, and the lower index between equal values, so the row's result is its first maximum (as std::max_element).
__global__ void argmax_rows_kernel(const float* x, int V, int32_t* out) {
  __shared__ float sv[kThreads];
  __shared__ int si[kThreads];
  const float* row = x + (int64_t)blockIdx.x * V;
  float bv = -INFINITY;
  int bi = INT_MAX;  // none yet
  for (int i = threadIdx.x; i < V; i += kThreads) {
    const float v = row[i];
    if (bi == INT_MAX || v > bv) {
      bv = v;
      bi = i;
    }
  }
  sv[threadIdx.x] = bv;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) {
      const float ov = sv[threadIdx.x + s];
      const int oi = si[threadIdx.x + s];
      const int mi = si[threadIdx.x];
      if (oi != INT_MAX && (mi == INT_MAX || ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < mi))) {
        sv[threadIdx.x] = ov;
        si[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = si[0] == INT_MAX ? 0 : si[0];
}

}  // namespace

void bias_grad(float* gb, const float* dy, int N, int C, cudaStream_t s) {
  if (C <= 0) return;
  bias_grad_kernel<<<(C + kThreads - 1) / kThreads, kThreads, 0, s>>>(gb, dy, N, C);
  CUDA_LAUNCH_CHECK("bias_grad_kernel");
}

double sum_squares(const float* x, int64_t n, double* scratch, cudaStream_t s) {
  if (n <= 0) return 0.0;
  sum_squares_partial<<<kSumSquaresBlocks, kThreads, 0, s>>>(x, n, scratch);
  CUDA_LAUNCH_CHECK("sum_squares_partial");
  sum_squares_final<<<1, kThreads, 0, s>>>(scratch);
  CUDA_LAUNCH_CHECK("sum_squares_final");
  double out = 0;
  CUDA_CHECK(cudaMemcpyAsync(&out, scratch, sizeof(double), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  return out;
}

// Block (x, i) zeroes the x-th of every gridDim.x stretches of buffer i.
__global__ void zero_many_kernel(const ZeroItem* items) {
  const ZeroItem it = items[blockIdx.y];
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < it.n; e += (int64_t)gridDim.x * blockDim.x)
    it.x[e] = 0.0f;
}

void zero_many(const ZeroItem* items, int count, int64_t longest, cudaStream_t s) {
  if (count <= 0 || longest <= 0) return;
  const int blocks = (int)std::min<int64_t>(64, (longest + kThreads - 1) / kThreads);
  for (int at = 0; at < count; at += kMaxGridY) {  // grid y is limited to 65535
    zero_many_kernel<<<dim3(blocks, std::min(count - at, kMaxGridY)), kThreads, 0, s>>>(items + at);
    CUDA_LAUNCH_CHECK("zero_many_kernel");
  }
}

double sum_squares_many(const float* const* xs, const int64_t* ns, int count, SumSquaresItem* items,
                        double* partial, double* sums, cudaStream_t s) {
  if (count <= 0) return 0.0;
  std::vector<SumSquaresItem> host((size_t)count);
  for (int i = 0; i < count; i++) host[i] = {xs[i], ns[i] > 0 ? ns[i] : 0};
  // Pageable -> device async copies are staged at once: no wait for the GPU here.
  CUDA_CHECK(cudaMemcpyAsync(items, host.data(), sizeof(SumSquaresItem) * count, cudaMemcpyHostToDevice, s));
  for (int at = 0; at < count; at += kMaxGridY) {  // grid y is limited to 65535
    const int c = std::min(count - at, kMaxGridY);
    sum_squares_many_partial<<<dim3(kSumSquaresBlocks, c), kThreads, 0, s>>>(items + at,
                                                                            partial + (int64_t)at * kSumSquaresBlocks);
    CUDA_LAUNCH_CHECK("sum_squares_many_partial");
    sum_squares_many_final<<<c, kThreads, 0, s>>>(partial + (int64_t)at * kSumSquaresBlocks, sums + at);
    CUDA_LAUNCH_CHECK("sum_squares_many_final");
  }
  std::vector<double> got((size_t)count);
  CUDA_CHECK(cudaMemcpyAsync(got.data(), sums, sizeof(double) * count, cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  double total = 0;  // in buffer order, as the per-buffer loop added them
  for (double v : got) total += v;
  return total;
}

void argmax_rows(const float* x, int N, int V, int32_t* out, cudaStream_t s) {
  if (N <= 0) return;
  argmax_rows_kernel<<<N, kThreads, 0, s>>>(x, V, out);
  CUDA_LAUNCH_CHECK("argmax_rows_kernel");
}

}  // namespace tf::cuda
