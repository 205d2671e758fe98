// Device memory: the caching allocator, host<->device copies and the device description for the run log.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/block_cache.h"
#include "cuda/common.cuh"
#include "cuda/memory.h"

namespace tf::cuda {

namespace {

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / 1073741824.0);
  return buf;
}

// Reuse follows BlockCache (block_cache.h): the smallest cached block at most 25% (or 2 MiB, capped at 2x) larger
// than the request serves it, so micro-batches whose padded length changes every step still reuse blocks; only a
// miss calls cudaMalloc. A block keeps its real size: live_ maps each pointer to it, so a freed block goes back to
// the cache whole and held()/held_peak() count what the device really holds for tensors.
// The first `bytes` of a fresh or reused block are zeroed, as the CPU allocator does: the engine relies on new
// gradients, AdamW moments and KV caches starting at 0 (the slack past the request is never read). All work runs
// on the legacy default stream, so reusing a block freed by the host is ordered after its last kernel.
// TUNEFORGE_CUDA_CACHE=0 turns the caching off: every tensor is its own cudaMalloc of exactly its bytes and is
// cudaFree'd when released (slow), so a checker (compute-sanitizer, or the CUDA emulator's guard pages) sees an
// access past a tensor's end instead of it landing in a larger cached block.
bool caching_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("TUNEFORGE_CUDA_CACHE");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

bool g_recording = false;
size_t g_recording_releases = 0;

class CudaAllocator final : public Allocator {
 public:
  size_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return cache_.cached_bytes();
  }
  size_t held() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_;
  }
  size_t held_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_peak_;
  }

  void release_cached() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const BlockCache::Block& b : cache_.take_all()) cudaFree(b.ptr);  // best effort: nothing worth reporting
  }

 protected:
  void* raw_alloc(size_t bytes) override {
    if (g_recording)
      throw std::runtime_error("device memory allocated while a step is being recorded (the recording is dropped)");
    const size_t size = caching_enabled() ? BlockCache::round(bytes) : bytes;
    BlockCache::Block b;
    if (caching_enabled()) {
      std::lock_guard<std::mutex> lock(mu_);
      b = cache_.take(size);
    }
    if (!b.ptr) b = {fresh(size, bytes), size};
    CUDA_CHECK(cudaMemsetAsync(b.ptr, 0, bytes, 0));
    std::lock_guard<std::mutex> lock(mu_);
    live_[b.ptr] = b.bytes;
    held_ += b.bytes;
    held_peak_ = std::max(held_peak_, held_);
    return b.ptr;
  }

  void raw_free(void* p) override {
    if (g_recording) g_recording_releases++;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours: never happens through Tensor
    if (caching_enabled()) cache_.put({p, it->second});
    else cudaFree(p);
    held_ -= it->second;
    live_.erase(it);
  }

 private:
  // A miss: cudaMalloc, and on failure give every cached block back to the driver and try once more.
  void* fresh(size_t size, size_t requested) {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the error state before retrying
      release_cached();
      e = cudaMalloc(&p, size);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw std::runtime_error("out of GPU memory: needed " + gib(requested) + " more, the engine holds " +
                               gib(in_use()) + " in tensors (" + gib(held()) + " in blocks, peak " + gib(peak()) +
                               "), the device has " + gib(free_b) + " free of " + gib(total_b) +
                               ". Lower the micro-batch size or the sequence length, or enable activation "
                               "checkpointing (and gradient accumulation to keep the effective batch).");
    }
    CUDA_CHECK(e);
    return p;
  }

  std::mutex mu_;
  BlockCache cache_;
  std::unordered_map<void*, size_t> live_;  // pointer -> the block's real size
  size_t held_ = 0, held_peak_ = 0;
};

// Never destroyed: freeing device memory during process exit races the CUDA runtime's own teardown.
CudaAllocator& pool() {
  static CudaAllocator* a = new CudaAllocator();
  return *a;
}

// Pinned host memory mapped into the device's address space: with unified addressing (every 64-bit platform CUDA
// supports) kernels use the host pointer itself, so the check below only refuses a platform where they differ. No
// caching: these are a model's long-lived tables. A failure returns null (Allocator throws std::bad_alloc), so the
// caller can keep the tensor on the device instead.
class HostMappedAllocator final : public Allocator {
 protected:
  void* raw_alloc(size_t bytes) override {
    void* p = nullptr;
    if (cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocMapped | cudaHostAllocPortable) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    void* on_device = nullptr;
    if (cudaHostGetDevicePointer(&on_device, p, 0) != cudaSuccess || on_device != p) {
      cudaGetLastError();
      cudaFreeHost(p);
      return nullptr;
    }
    std::memset(p, 0, bytes);  // as the device pool zeroes: no kernel can be using fresh memory yet
    return p;
  }
  void raw_free(void* p) override { cudaFreeHost(p); }  // waits for the device, as cudaFree does
};

}  // namespace

Allocator& host_mapped_allocator() {
  static HostMappedAllocator* a = new HostMappedAllocator();  // never destroyed, like pool()
  return *a;
}

Allocator& allocator() { return pool(); }
size_t cached_bytes() { return pool().cached(); }
size_t held_bytes() { return pool().held(); }
size_t held_peak_bytes() { return pool().held_peak(); }
void release_cached() { pool().release_cached(); }
void set_recording(bool on) {
  g_recording = on;
  if (on) g_recording_releases = 0;
}
size_t releases_while_recording() { return g_recording_releases; }

// cudaMemcpyDefault: the runtime tells device memory from pinned host memory (a host-mapped tensor) by the address.
void memcpy_h2d(void* dst, const void* src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

void memcpy_d2h(void* dst, const void* src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
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
