// Benchmark support on the GPU, as plain C++ (defined in bandwidth.cu; CUDA builds only): the device-to-device
// copy bandwidth that the generation roofline divides by, and a device-wide synchronisation for timers.
#pragma once
#include <cstddef>

namespace tf::cuda {

struct CopyBandwidth {
  size_t bytes = 0;      // bytes copied per copy
  int iters = 0;         // timed copies
  double seconds = 0;    // per copy (cudaEvent timing, after one untimed copy)
  double gb_per_s = 0;   // 2 * bytes / seconds / 1e9: every byte is read once and written once
};

// Times `iters` cudaMemcpyDeviceToDevice of `bytes` between two fresh buffers (outside the engine allocator,
// freed before returning).
CopyBandwidth d2d_copy_bandwidth(size_t bytes, int iters);

// Waits for all queued GPU work (cudaDeviceSynchronize), throwing on an asynchronous error.
void synchronize();

}  // namespace tf::cuda
