// Device-to-device copy bandwidth (the memory roofline of the generation benchmark) and a device sync.
#include "cuda/bandwidth.h"
#include "cuda/common.cuh"

namespace tf::cuda {

namespace {

// Frees on every path, so a failed measurement does not leak gigabytes the next benchmark case needs.
struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) { CUDA_CHECK(cudaMalloc(&p, bytes)); }
  ~DeviceBuffer() { cudaFree(p); }
};

struct Event {
  cudaEvent_t e = nullptr;
  Event() { CUDA_CHECK(cudaEventCreate(&e)); }
  ~Event() { cudaEventDestroy(e); }
};

}  // namespace

CopyBandwidth d2d_copy_bandwidth(size_t bytes, int iters) {
  if (bytes == 0 || iters <= 0) throw std::runtime_error("d2d_copy_bandwidth: bytes and iters must be positive");
  DeviceBuffer src(bytes), dst(bytes);
  CUDA_CHECK(cudaMemset(src.p, 1, bytes));
  CUDA_CHECK(cudaMemcpy(dst.p, src.p, bytes, cudaMemcpyDeviceToDevice));  // untimed: first-touch costs
  Event start, stop;
  CUDA_CHECK(cudaEventRecord(start.e, 0));
  for (int i = 0; i < iters; i++) CUDA_CHECK(cudaMemcpyAsync(dst.p, src.p, bytes, cudaMemcpyDeviceToDevice, 0));
  CUDA_CHECK(cudaEventRecord(stop.e, 0));
  CUDA_CHECK(cudaEventSynchronize(stop.e));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start.e, stop.e));
  CopyBandwidth r;
  r.bytes = bytes;
  r.iters = iters;
  r.seconds = ms / 1e3 / iters;
  r.gb_per_s = 2.0 * (double)bytes / r.seconds / 1e9;
  return r;
}

void synchronize() { CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace tf::cuda
