#include "engine/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#ifdef TUNEFORGE_CUDA
#include "cuda/memory.h"
#endif

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

Allocator& allocator_for(Device device) {
  static CpuAllocator cpu;
  if (device == Device::CPU) return cpu;
#ifdef TUNEFORGE_CUDA
  return cuda::allocator();
#else
  throw std::runtime_error("this build of the tuneforge engine has no CUDA backend (it was built without the "
                           "CUDA toolkit and cuBLAS); rebuild on a machine that has them to use the GPU");
#endif
}

Allocator& host_mapped_allocator() {
#ifdef TUNEFORGE_CUDA
  return cuda::host_mapped_allocator();
#else
  return allocator_for(Device::CUDA);  // throws: no CUDA backend in this build
#endif
}

bool cuda_built() {
#ifdef TUNEFORGE_CUDA
  return true;
#else
  return false;
#endif
}

static void check_copy(const Tensor& t, size_t bytes) {
  if (bytes > t.bytes())
    throw std::out_of_range("copy of " + std::to_string(bytes) + " bytes into a tensor of " +
                            std::to_string(t.bytes()));
}

void copy_from_host(Tensor& dst, const void* src, size_t bytes) {
  check_copy(dst, bytes);
  if (bytes == 0) return;
  if (dst.device() == Device::CPU) {
    std::memcpy(dst.f32(), src, bytes);
    return;
  }
#ifdef TUNEFORGE_CUDA
  cuda::memcpy_h2d(dst.f32(), src, bytes);
#endif
}

void copy_to_host(void* dst, const Tensor& src, size_t bytes) {
  check_copy(src, bytes);
  if (bytes == 0) return;
  if (src.device() == Device::CPU) {
    std::memcpy(dst, src.f32(), bytes);
    return;
  }
#ifdef TUNEFORGE_CUDA
  cuda::memcpy_d2h(dst, src.f32(), bytes);
#endif
}

DeviceInts::DeviceInts(Device device, const int32_t* host, size_t n) : ptr_(host) {
  if (!host || device == Device::CPU) return;
  copy_ = Tensor({(int64_t)n}, DType::I32, device);
  copy_from_host(copy_, host, n * sizeof(int32_t));
  ptr_ = copy_.i32();
}

HostFloats::HostFloats(Device device, float* host, int64_t n) : host_(host) {
  if (device != Device::CPU) dev_ = Tensor({n}, DType::F32, device);
}

void HostFloats::finish() {
  if (!dev_.empty()) copy_to_host(host_, dev_);
}

Tensor::Tensor(std::vector<int64_t> shape, DType dtype, Device device, bool host_mapped)
    : shape_(std::move(shape)), dtype_(dtype), device_(device), host_mapped_(host_mapped) {
  numel_ = 1;
  for (int64_t d : shape_) numel_ *= d;
  data_ = owner().allocate(bytes());
}

Tensor Tensor::host_mapped(std::vector<int64_t> shape, DType dtype) {
  return Tensor(std::move(shape), dtype, Device::CUDA, true);
}

Allocator& Tensor::owner() const { return host_mapped_ ? host_mapped_allocator() : allocator_for(device_); }

Tensor Tensor::view(Tensor& base, int64_t offset, std::vector<int64_t> shape) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = 1;
  for (int64_t d : t.shape_) t.numel_ *= d;
  if (offset < 0 || offset + t.numel_ > base.numel_) throw std::out_of_range("tensor view past the end of its base");
  t.dtype_ = base.dtype_;
  t.device_ = base.device_;
  t.data_ = static_cast<char*>(base.data_) + offset * (int64_t)dtype_size(base.dtype_);
  t.view_ = true;
  t.host_mapped_ = base.host_mapped_;
  return t;
}

Tensor& Tensor::operator=(Tensor&& o) noexcept {
  if (this != &o) {
    reset();
    data_ = o.data_;
    shape_ = std::move(o.shape_);
    numel_ = o.numel_;
    dtype_ = o.dtype_;
    device_ = o.device_;
    view_ = o.view_;
    host_mapped_ = o.host_mapped_;
    o.data_ = nullptr;
    o.view_ = false;
    o.host_mapped_ = false;
    o.numel_ = 0;
    o.shape_.clear();
  }
  return *this;
}

void Tensor::reset() {
  if (data_ && !view_) owner().release(data_, bytes());
  data_ = nullptr;
  view_ = false;
  host_mapped_ = false;
  numel_ = 0;
  shape_.clear();
}

}  // namespace tf
