#include "engine/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace tf {

void* Allocator::allocate(size_t bytes) {
  void* p = raw_alloc(bytes);
  if (!p) throw std::bad_alloc();
  in_use_ += bytes;
  if (in_use_ > peak_) peak_ = in_use_;
  return p;
}

void Allocator::release(void* ptr, size_t bytes) {
  if (!ptr) return;
  raw_free(ptr);
  in_use_ -= bytes;
}

namespace {
// 64-byte aligned host memory, zero-filled so fresh gradients and caches start at 0.
class CpuAllocator : public Allocator {
 protected:
  void* raw_alloc(size_t bytes) override {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (p) std::memset(p, 0, rounded);
    return p;
  }
  void raw_free(void* ptr) override { std::free(ptr); }
};
}  // namespace

Allocator& allocator_for(Device) {
  static CpuAllocator cpu;
  return cpu;
}

Tensor::Tensor(std::vector<int64_t> shape, DType dtype, Device device)
    : shape_(std::move(shape)), dtype_(dtype), device_(device) {
  numel_ = 1;
  for (int64_t d : shape_) numel_ *= d;
  data_ = allocator_for(device_).allocate(bytes());
}

Tensor& Tensor::operator=(Tensor&& o) noexcept {
  if (this != &o) {
    reset();
    data_ = o.data_;
    shape_ = std::move(o.shape_);
    numel_ = o.numel_;
    dtype_ = o.dtype_;
    device_ = o.device_;
    o.data_ = nullptr;
    o.numel_ = 0;
    o.shape_.clear();
  }
  return *this;
}

void Tensor::reset() {
  if (data_) allocator_for(device_).release(data_, bytes());
  data_ = nullptr;
  numel_ = 0;
  shape_.clear();
}

}  // namespace tf
