#include "engine/weights.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace tf {

namespace {

float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

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
  const int fd = open(file.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(file + ": cannot open");
  const int64_t n = dst.numel();
  // CPU tensors are filled in place; device tensors through a host staging buffer, copied up once.
  std::vector<float> staging(dst.device() == Device::CPU ? 0 : (size_t)n);
  float* out = dst.device() == Device::CPU ? dst.f32() : staging.data();
  try {
    if (dtype == "F32") {
      read_exact(fd, reinterpret_cast<char*>(out), (size_t)n * 4, offset, file);
    } else if (dtype == "BF16" || dtype == "F16") {
      std::vector<uint16_t> raw((size_t)n);
      read_exact(fd, reinterpret_cast<char*>(raw.data()), (size_t)n * 2, offset, file);
      const bool bf = dtype == "BF16";
      for (int64_t i = 0; i < n; i++) out[i] = bf ? bf16_to_f32(raw[i]) : f16_to_f32(raw[i]);
    } else {
      throw std::runtime_error(file + ": weights of dtype " + dtype + " are not supported (F32, F16, BF16)");
    }
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
  if (dst.device() != Device::CPU) copy_from_host(dst, staging.data());
}

}  // namespace tf
