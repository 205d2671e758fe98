// What the masks say about keys and queries, read once per tile or key by the mma and decode attention kernels
// instead of once per score: a key is usable when it lies before `end` (the causal end of the tile's queries, or of
// the cache) and is not padding, and visible to a query at or after it in the same segment (attention.cu's
// visible(); segment 0 without segment ids).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace tf::cuda {

__device__ inline bool key_usable(const int32_t* key_valid, int64_t row, int s, int end) {
  return s < end && (!key_valid || key_valid[row + s] != 0);
}
__device__ inline int segment_of(const int32_t* seg, int64_t row, int s, int end) {
  return seg && s < end ? seg[row + s] : 0;
}

// True on every lane of the warp when `mine` holds on every lane: a butterfly of ANDs, so the answer is the same on
// all of them (every lane of the warp must call it).
__device__ inline bool warp_all(bool mine) {
  int all = mine;
  for (int m = 16; m > 0; m >>= 1) all &= __shfl_xor_sync(0xffffffffu, all, m);
  return all != 0;
}

// This lane's share (every 32nd key) of "a staged tile's keys [0, n) are all usable and in segment s", with ok and sg
// as the mma kernels stage them: combine the lanes with warp_all.
__device__ inline bool keys_in_segment(const int* ok, const int* sg, int n, int s) {
  bool all = true;
  for (int c = threadIdx.x % 32; c < n; c += 32) all = all && ok[c] && sg[c] == s;
  return all;
}

}  // namespace tf::cuda
