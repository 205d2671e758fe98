// Random weights without checkpoint files (benchmarks at HF sizes, where writing safetensors would cost more than
// the run): element i of a tensor is a normal draw from a counter-based hash of (key, i), so a fill depends only on
// the key, never on thread count or device, and the CPU and CUDA fills agree.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/dropout_rng.h"  // splitmix64, TF_HOST_DEVICE

namespace tf {

// A standard normal value for element i of the stream `key` (Box-Muller on two 24-bit uniforms; |z| <= 5.8).
TF_HOST_DEVICE inline float random_normal(uint64_t key, int64_t i) {
  const uint64_t h1 = splitmix64(key ^ (uint64_t)(2 * i)), h2 = splitmix64(key ^ (uint64_t)(2 * i + 1));
  const float u1 = (float)((h1 >> 40) + 1) * (1.0f / 16777216.0f);  // (0, 1]: log stays finite
  const float u2 = (float)(h2 >> 40) * (1.0f / 16777216.0f);        // [0, 1)
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958648f * u2);
}

}  // namespace tf
