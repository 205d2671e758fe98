#include "engine/weights.h"

#include "engine/bf16.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace tf {

namespace {

float f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
  if (exp == 0) {
    if (mant == 0) u = sign;
    else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        exp--;
      }
      u = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000 | (mant << 13);
  } else {
    u = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void read_exact(int fd, char* buf, size_t n, uint64_t offset, const std::string& file) {
  size_t done = 0;
  while (done < n) {
    ssize_t got = pread(fd, buf + done, n - done, (off_t)(offset + done));
    if (got <= 0) throw std::runtime_error(file + ": unexpected end of file while reading weights");
    done += (size_t)got;
  }
}

}  // namespace

void load_tensor(Tensor& dst, const std::string& file, uint64_t offset, const std::string& dtype) {
  if (dst.dtype() != DType::F32 && dst.dtype() != DType::BF16)
    throw std::runtime_error(file + ": weights load into F32 or BF16 tensors only");
  const bool to_bf16 = dst.dtype() == DType::BF16;
  const int fd = open(file.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(file + ": cannot open");
  const int64_t n = dst.numel();
  // CPU tensors are filled in place; device tensors through a host staging buffer, copied up once.
  const bool direct = dst.device() == Device::CPU;
  std::vector<char> staging(direct ? 0 : dst.bytes());
  char* out = direct ? static_cast<char*>(static_cast<void*>(dst.f32())) : staging.data();
  float* out_f32 = reinterpret_cast<float*>(out);
  uint16_t* out_bf16 = reinterpret_cast<uint16_t*>(out);
  try {
    if (dtype == "F32") {
      if (!to_bf16) {
        read_exact(fd, out, (size_t)n * 4, offset, file);
      } else {
        // Rounded in slices, so a large tensor never needs a whole fp32 copy beside its bf16 one.
        constexpr int64_t kSlice = 1 << 20;
        std::vector<float> buf((size_t)std::min(n, kSlice));
        for (int64_t s = 0; s < n; s += kSlice) {
          const int64_t m = std::min(kSlice, n - s);
          read_exact(fd, reinterpret_cast<char*>(buf.data()), (size_t)m * 4, offset + (uint64_t)s * 4, file);
          for (int64_t i = 0; i < m; i++) out_bf16[s + i] = f32_to_bf16(buf[i]);
        }
      }
    } else if (dtype == "BF16" && to_bf16) {
      read_exact(fd, out, (size_t)n * 2, offset, file);  // already the stored format: no conversion
    } else if (dtype == "BF16" || dtype == "F16") {
      std::vector<uint16_t> raw((size_t)n);
      read_exact(fd, reinterpret_cast<char*>(raw.data()), (size_t)n * 2, offset, file);
      const bool bf = dtype == "BF16";
      for (int64_t i = 0; i < n; i++) {
        const float f = bf ? bf16_to_f32(raw[i]) : f16_to_f32(raw[i]);
        if (to_bf16) out_bf16[i] = f32_to_bf16(f);
        else out_f32[i] = f;
      }
    } else {
      throw std::runtime_error(file + ": weights of dtype " + dtype + " are not supported (F32, F16, BF16)");
    }
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
  if (!direct) copy_from_host(dst, staging.data());
}

}  // namespace tf
