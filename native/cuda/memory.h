// The CUDA side of engine memory, as plain C++ (no CUDA headers), so g++-compiled files can use it. Defined
// in memory.cu; only linked when the addon is built with the CUDA backend (TUNEFORGE_CUDA).
#pragma once
#include <cstddef>
#include <string>

#include "engine/tensor.h"

namespace tf::cuda {

// The device allocator behind allocator_for(Device::CUDA): a caching pool over cudaMalloc (best fit with bounded
// slack, cuda/block_cache.h). in_use()/peak() count the bytes engine tensors asked for (the high-water mark
// reported as peak memory); held_bytes()/held_peak_bytes() the real sizes of the blocks serving them (at most 25%,
// or 2 MiB, more). Blocks freed by tensors stay cached for reuse, so steady-state training steps do not call
// cudaMalloc (which synchronises the GPU).
Allocator& allocator();
// The allocator behind Tensor::host_mapped: pinned host memory kernels read over the bus (memory.cu).
Allocator& host_mapped_allocator();
size_t cached_bytes();     // bytes held by the pool but not by any tensor
size_t held_bytes();       // real block bytes serving live tensors
size_t held_peak_bytes();  // high-water mark of held_bytes() (never reset)
void release_cached();     // returns cached blocks to the driver

// While a step is being recorded (CudaBackend::record) the pool must neither hand out nor take back memory: a
// recorded kernel keeps the addresses it was given, so a block freed during recording and reused later would be
// written by every replay. allocate() then throws; a release is counted, and the recording is thrown away.
void set_recording(bool on);
size_t releases_while_recording();  // since the last set_recording(true)

// Synchronous copies between host memory and device (or host-mapped) memory.
void memcpy_h2d(void* dst, const void* src, size_t bytes);
void memcpy_d2h(void* dst, const void* src, size_t bytes);

struct DeviceInfo {
  bool available = false;
  std::string reason;  // why not available
  std::string name;
  int major = 0, minor = 0, sm_count = 0;
  size_t total_bytes = 0, free_bytes = 0;  // cudaMemGetInfo: the whole device, all processes
};
DeviceInfo device_info();

}  // namespace tf::cuda
