// The LoRA dropout generator, shared by the CPU and CUDA backends so both drop exactly the same elements: a
// counter-based hash of (seed, index), so a mask depends neither on thread count nor device.
//
// The hash is 32-bit (lowbias32, Chris Wellons' integer hash search: two multiplies and three xor-shifts) on the index
// xored with a key drawn from the seed by splitmix64: a GPU draws one per input element of every adapted projection,
// three times a training step, where splitmix64's 64-bit multiplies made the masks cost more than the LoRA products.
#pragma once
#include <cmath>
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

TF_HOST_DEVICE inline uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  return x ^ (x >> 16);
}

// The mask of one dropout draw: element i is 0 (dropped, with probability p) or 1 / (1 - p).
struct DropoutMask {
  uint32_t key_lo = 0, key_hi = 0;  // splitmix64(seed)
  uint32_t below = 0;               // hashes below this are dropped; 0: no dropout
  float keep = 1.0f;

  static DropoutMask make(float p, uint64_t seed) {
    DropoutMask m;
    if (!(p > 0.0f)) return m;
    const uint64_t key = splitmix64(seed);
    m.key_lo = (uint32_t)key;
    m.key_hi = (uint32_t)(key >> 32);
    // P(hash < below) = below / 2^32 = p, to 2^-32
    m.below = (uint32_t)std::fmin(std::ceil((double)p * 4294967296.0), 4294967295.0);
    m.keep = 1.0f / (1.0f - p);
    return m;
  }
  TF_HOST_DEVICE bool active() const { return below != 0; }
  // Indices past 2^32 (inputs of more than 4 Gi elements) mix their high word in with a second hash.
  TF_HOST_DEVICE uint32_t hash(int64_t i) const {
    uint32_t h = lowbias32((uint32_t)i ^ key_lo);
    if ((uint64_t)i >> 32) h = lowbias32(h ^ key_hi ^ (uint32_t)((uint64_t)i >> 32));
    return h;
  }
  TF_HOST_DEVICE float at(int64_t i) const {
    if (below == 0) return 1.0f;
    return hash(i) < below ? 0.0f : keep;
  }
};

}  // namespace tf
