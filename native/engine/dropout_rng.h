// The LoRA dropout generator, shared by the CPU and CUDA backends so both drop exactly the same elements:
// splitmix64 of (seed, index), a counter-based generator, so a mask depends neither on thread count nor device.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define TF_HOST_DEVICE __host__ __device__
#else
#define TF_HOST_DEVICE
#endif

namespace tf {

TF_HOST_DEVICE inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Element i of the stream seeded by `base` (= splitmix64(seed)): 0 (dropped, with probability p) or 1 / (1 - p).
TF_HOST_DEVICE inline float dropout_mask(uint64_t base, int64_t i, float p, float keep) {
  const double u = (double)(splitmix64(base ^ (uint64_t)i) >> 11) * (1.0 / 9007199254740992.0);
  return u < p ? 0.0f : keep;
}

}  // namespace tf
