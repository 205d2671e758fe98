// Softmax cross-entropy over the vocabulary fused with its gradient, in place on the logits, as
// native/cpu/cross_entropy.cc. One block per row: the row's max and sum of exp(z - max) in double in one read (each
// thread an online pair, rescaled when its max grows), then the gradient softmax * grad_scale minus grad_scale at the
// target in a second. A row of 152K logits is 608 KB, which the L2 cache does not keep for the 264 rows in flight:
// max and sum as two passes read the logits three times, at 8 ms of a Qwen3-0.6B step on an H100. Per-row losses are
// summed on the host.
#include <cmath>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace tf::cuda {

namespace {

constexpr int kRowThreads = 1024;  // a 152K-entry row is 150 loads per thread

// The bound makes the compiler keep to 64 registers a thread: without it a 1024-thread launch fails ("too many
// resources requested") as soon as a change or another architecture's code needs more.
__global__ void __launch_bounds__(kRowThreads)
    cross_entropy_kernel(float* logits, const int32_t* targets, int V, float grad_scale, double* row_loss) {
  __shared__ double sh[kRowThreads];
  const int64_t row = blockIdx.x;
  float* z = logits + row * V;
  const int t = targets[row];  // the same for the whole block, so the early returns below are uniform
  if (t < 0 || t >= V) {
    for (int c = threadIdx.x; c < V; c += blockDim.x) z[c] = 0.0f;
    // An out-of-range target is a caller bug: make it visible as a NaN loss instead of reading past the row.
    if (threadIdx.x == 0) row_loss[row] = t < 0 ? 0.0 : nan("");
    return;
  }
  const float zt = z[t];  // read by every thread before the first barrier, hence before any write below
  float m = -INFINITY;  // this thread's max and its sum of exp(z - m)
  double part = 0;
  for (int c = threadIdx.x; c < V; c += blockDim.x) {
    const float zc = z[c];
    if (zc > m) {
      part = part * exp((double)m - (double)zc) + 1.0;  // (exp(-inf) = 0 for the first)
      m = zc;
    } else if (zc != -INFINITY) {
      part += exp((double)zc - (double)m);
    }
  }
  const float mx = (float)block_max((double)m, sh);
  double sum = block_sum(part == 0.0 ? 0.0 : part * exp((double)m - (double)mx), sh);
  if (threadIdx.x == 0) row_loss[row] = (double)mx + log(sum) - (double)zt;
  if (grad_scale == 0.0f) {  // evaluation: the loss only (the gradient is all zeros)
    for (int c = threadIdx.x; c < V; c += blockDim.x) z[c] = 0.0f;
    return;
  }
  const float sc = (float)(grad_scale / sum);
  for (int c = threadIdx.x; c < V; c += blockDim.x) {
    const float e = (float)exp((double)z[c] - (double)mx);
    const float gv = e * sc;
    z[c] = c == t ? gv - grad_scale : gv;
  }
}

}  // namespace

double cross_entropy(float* logits, const int32_t* targets, int N, int V, float grad_scale, double* row_loss,
                     cudaStream_t s) {
  if (N <= 0 || V <= 0) return 0.0;
  cross_entropy_kernel<<<N, kRowThreads, 0, s>>>(logits, targets, V, grad_scale, row_loss);
  CUDA_LAUNCH_CHECK("cross_entropy_kernel");
  std::vector<double> losses(N);
  CUDA_CHECK(cudaMemcpyAsync(losses.data(), row_loss, sizeof(double) * N, cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  double total = 0;
  for (double l : losses) total += l;
  return total;
}

}  // namespace tf::cuda
