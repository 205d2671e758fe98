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

}  // namespace tf::cuda
