// Device memory: the caching allocator, host<->device copies and the device description for the run log.
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/memory.h"

namespace tf::cuda {

namespace {

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / 1073741824.0);
  return buf;
}

// Blocks are kept in exact size classes (512-byte granules): a training step asks for the same sizes every
// time, so after the first step every request is served from the pool. Fresh and reused blocks are zeroed,
// as the CPU allocator does, because the engine relies on new gradients and caches starting at 0. All work
// runs on the legacy default stream, so reusing a block freed by the host is ordered after its last kernel.
class CudaAllocator final : public Allocator {
 public:
  size_t cached() const { return cached_; }

  void release_cached() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) cudaFree(p);  // best effort: a failure here frees nothing worth reporting
    free_.clear();
    cached_ = 0;
  }

 protected:
  void* raw_alloc(size_t bytes) override {
    const size_t size = (bytes + 511) / 512 * 512 + (bytes == 0 ? 512 : 0);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_ -= size;
      }
    }
    if (!p) p = fresh(size, bytes);
    CUDA_CHECK(cudaMemsetAsync(p, 0, size, 0));
    std::lock_guard<std::mutex> lock(mu_);
    live_[p] = size;
    return p;
  }

  void raw_free(void* p) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours: never happens through Tensor
    free_[it->second].push_back(p);
    cached_ += it->second;
    live_.erase(it);
  }

 private:
  void* fresh(size_t size, size_t requested) {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the sticky-free error state before retrying
      release_cached();
      e = cudaMalloc(&p, size);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw std::runtime_error("out of GPU memory: needed " + gib(requested) + " more, the engine holds " +
                               gib(in_use()) + " (peak " + gib(peak()) + "), the device has " + gib(free_b) +
                               " free of " + gib(total_b) +
                               ". Lower the micro-batch size or the sequence length, or enable activation "
                               "checkpointing (and gradient accumulation to keep the effective batch).");
    }
    CUDA_CHECK(e);
    return p;
  }

  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  std::unordered_map<void*, size_t> live_;
  size_t cached_ = 0;
};

// Never destroyed: freeing device memory during process exit races the CUDA runtime's own teardown.
CudaAllocator& pool() {
  static CudaAllocator* a = new CudaAllocator();
  return *a;
}

}  // namespace

Allocator& allocator() { return pool(); }
size_t cached_bytes() { return pool().cached(); }
void release_cached() { pool().release_cached(); }

void memcpy_h2d(void* dst, const void* src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void memcpy_d2h(void* dst, const void* src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

DeviceInfo device_info() {
  DeviceInfo info;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    info.reason = e != cudaSuccess ? std::string("no usable CUDA device: ") + cudaGetErrorString(e)
                                   : "no CUDA device found";
    return info;
  }
  int dev = 0;
  cudaDeviceProp prop{};
  if ((e = cudaGetDevice(&dev)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess ||
      (e = cudaMemGetInfo(&info.free_bytes, &info.total_bytes)) != cudaSuccess) {
    cudaGetLastError();
    info.reason = std::string("the CUDA device could not be queried: ") + cudaGetErrorString(e);
    return info;
  }
  info.available = true;
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  info.sm_count = prop.multiProcessorCount;
  return info;
}

}  // namespace tf::cuda
