// Reductions: bias gradients (column sums) and the sum of squares behind gradient-norm clipping. Both sum in
// double in a fixed order: no atomics, so the same inputs give the same bits on every run.
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

}  // namespace tf::cuda
