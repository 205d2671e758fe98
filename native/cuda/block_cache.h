// The reuse policy of the CUDA caching allocator (memory.cu), as plain host C++ so the CPU tests can exercise it
// through the addon (blockCacheCheck). It only books opaque pointers and sizes; memory.cu does the cudaMalloc.
//
// Why best fit with slack: the trainer pads each micro-batch to its longest row, so activation sizes change a
// little every step. With exact size classes every new length was a fresh cudaMalloc (a device-wide sync) and the
// cache grew until an out-of-memory flushed it. Here a cached block somewhat larger than the request may serve it
// (the smallest one that fits); blocks are never split, so a block keeps its real size for its whole life.
#pragma once
#include <algorithm>
#include <cstddef>
#include <map>
#include <utility>
#include <vector>

namespace tf::cuda {

class BlockCache {
 public:
  struct Block {
    void* ptr = nullptr;
    size_t bytes = 0;  // the block's real size (what cudaMalloc gave), >= the request
  };

  static constexpr size_t kGranule = 512;
  static constexpr size_t kSlackCap = size_t{2} << 20;  // 2 MiB

  // Requests are rounded up to 512-byte granules (0 bytes still gets one granule: a distinct pointer).
  static size_t round(size_t bytes) { return bytes == 0 ? kGranule : (bytes + kGranule - 1) / kGranule * kGranule; }

  // The largest cached block a request of `size` (rounded) bytes may take: up to 25% larger, or up to 2 MiB larger
  // when that is more, but never more than twice the request (a 4 KiB tensor must not pin a 2 MiB block).
  static size_t max_block_for(size_t size) { return size + std::max(size / 4, std::min(size, kSlackCap)); }

  // The smallest cached block that may serve `size` (rounded) bytes, removed from the cache; {nullptr, 0} if none.
  Block take(size_t size) {
    auto it = free_.lower_bound(size);
    if (it == free_.end() || it->first > max_block_for(size)) return {};
    Block b{it->second, it->first};
    free_.erase(it);
    cached_ -= b.bytes;
    return b;
  }

  // Returns a block (at its real size) to the cache.
  void put(Block b) {
    free_.emplace(b.bytes, b.ptr);
    cached_ += b.bytes;
  }

  // Empties the cache, handing every block back to the caller to free.
  std::vector<Block> take_all() {
    std::vector<Block> out;
    out.reserve(free_.size());
    for (const auto& [bytes, ptr] : free_) out.push_back({ptr, bytes});
    free_.clear();
    cached_ = 0;
    return out;
  }

  size_t cached_bytes() const { return cached_; }
  size_t cached_blocks() const { return free_.size(); }

 private:
  std::multimap<size_t, void*> free_;  // by size: lower_bound finds the best fit
  size_t cached_ = 0;
};

}  // namespace tf::cuda
