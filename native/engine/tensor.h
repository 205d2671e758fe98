// Engine-owned tensors. Every buffer the engine uses comes from the allocator of its device, which
// records the bytes in use and the high-water mark (reported to the user as peak memory).
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace tf {

// CUDA tensors exist only in builds with the CUDA backend (TUNEFORGE_CUDA); elsewhere allocating one throws.
enum class Device { CPU, CUDA };
// BF16 / F16: frozen base weights in bf16 or fp16 mode, and activations or a KV cache kept in bf16 (raw uint16 bit
// patterns, see engine/bf16.h); everything else is F32 (or I32 indices).
enum class DType { F32, I32, BF16, F16 };

inline size_t dtype_size(DType t) { return t == DType::BF16 || t == DType::F16 ? 2 : 4; }
inline bool is_half(DType t) { return t == DType::BF16 || t == DType::F16; }

class Allocator {
 public:
  virtual ~Allocator() = default;
  void* allocate(size_t bytes);
  void release(void* ptr, size_t bytes);
  size_t in_use() const { return in_use_; }
  size_t peak() const { return peak_; }
  void reset_peak() { peak_ = in_use_; }

 protected:
  virtual void* raw_alloc(size_t bytes) = 0;
  virtual void raw_free(void* ptr) = 0;

 private:
  size_t in_use_ = 0;
  size_t peak_ = 0;
};

Allocator& allocator_for(Device device);
// Pinned host memory that CUDA kernels read and write through the same address (unified addressing): for a tensor
// the GPU only gathers a few rows of per step (Model::embedding_table). Counted apart from the device's allocator, so
// peak memory stays the GPU's own. Throws in a build without CUDA.
Allocator& host_mapped_allocator();

// True when this build has the CUDA backend compiled in (whether or not a GPU is present).
bool cuda_built();

// A dense row-major tensor. Move-only: the memory has exactly one owner. A view (Tensor::view) names consecutive
// elements of another tensor and owns nothing: the base must outlive it.
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape, DType dtype = DType::F32, Device device = Device::CPU)
      : Tensor(std::move(shape), dtype, device, false) {}
  // A CUDA tensor in pinned host memory (host_mapped_allocator): kernels take its pointer like any CUDA tensor's.
  static Tensor host_mapped(std::vector<int64_t> shape, DType dtype);
  // Elements [offset, offset + numel(shape)) of `base`, with base's dtype and device.
  static Tensor view(Tensor& base, int64_t offset, std::vector<int64_t> shape);
  ~Tensor() { reset(); }
  Tensor(Tensor&& o) noexcept { *this = std::move(o); }
  Tensor& operator=(Tensor&& o) noexcept;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  float* f32() { return static_cast<float*>(data_); }
  const float* f32() const { return static_cast<const float*>(data_); }
  int32_t* i32() { return static_cast<int32_t*>(data_); }
  const int32_t* i32() const { return static_cast<const int32_t*>(data_); }
  uint16_t* bf16() { return static_cast<uint16_t*>(data_); }
  const uint16_t* bf16() const { return static_cast<const uint16_t*>(data_); }
  // The raw bits of a half tensor of either kind (BF16 or F16).
  uint16_t* half() { return static_cast<uint16_t*>(data_); }
  const uint16_t* half() const { return static_cast<const uint16_t*>(data_); }

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const { return numel_; }
  size_t bytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool empty() const { return data_ == nullptr; }
  bool is_view() const { return view_; }
  bool is_host_mapped() const { return host_mapped_; }
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }
  void reset();

 private:
  Tensor(std::vector<int64_t> shape, DType dtype, Device device, bool host_mapped);
  // The allocator that gave data_ (and takes it back).
  Allocator& owner() const;

  void* data_ = nullptr;
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
  bool view_ = false;
  bool host_mapped_ = false;
};

// Copies between host memory and a tensor of any device (memcpy for CPU tensors, a synchronous cudaMemcpy
// for CUDA ones, host-mapped or not). bytes must not exceed the tensor's size.
void copy_from_host(Tensor& dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const Tensor& src, size_t bytes);
// Whole-tensor forms (bytes = the tensor's size).
inline void copy_from_host(Tensor& dst, const void* src) { copy_from_host(dst, src, dst.bytes()); }
inline void copy_to_host(void* dst, const Tensor& src) { copy_to_host(dst, src, src.bytes()); }

// A host int32 array (token ids, masks, labels, segment ids, positions, row indices) where the backend can
// read it: on the CPU the host pointer itself (no copy, no allocation), on CUDA a copy uploaded once into
// device memory, freed when this goes out of scope (the pool keeps the block for the next call). Null stays null.
class DeviceInts {
 public:
  DeviceInts() = default;
  DeviceInts(Device device, const int32_t* host, size_t n);
  const int32_t* get() const { return ptr_; }

 private:
  Tensor copy_;
  const int32_t* ptr_ = nullptr;
};

// A host float buffer a backend kernel writes (logits the host samples from, merged weights): on the CPU the
// kernel writes the host buffer directly; on CUDA it writes device scratch and finish() copies it back.
class HostFloats {
 public:
  HostFloats(Device device, float* host, int64_t n);
  float* get() { return dev_.empty() ? host_ : dev_.f32(); }
  void finish();

 private:
  float* host_;
  Tensor dev_;
};

}  // namespace tf
