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
  if (dst.dtype() != DType::F32 && !is_half(dst.dtype()))
    throw std::runtime_error(file + ": weights load into F32, BF16 or F16 tensors only");
  const DType to = dst.dtype();
  // A value as the destination stores it: bf16 or fp16 bits (rounded to nearest even), or the float itself.
  auto narrow = [to](float f) { return to == DType::BF16 ? f32_to_bf16(f) : f32_to_f16(f); };
  const int fd = open(file.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(file + ": cannot open");
  const int64_t n = dst.numel();
  // CPU tensors and host-mapped ones (an untied embedding table on a GPU, read by no kernel while the model loads) are
  // filled in place; device tensors through a host staging buffer, copied up once.
  const bool direct = dst.device() == Device::CPU || dst.is_host_mapped();
  std::vector<char> staging(direct ? 0 : dst.bytes());
  char* out = direct ? static_cast<char*>(static_cast<void*>(dst.f32())) : staging.data();
  float* out_f32 = reinterpret_cast<float*>(out);
  uint16_t* out_half = reinterpret_cast<uint16_t*>(out);
  try {
    if (dtype == "F32") {
      if (to == DType::F32) {
        read_exact(fd, out, (size_t)n * 4, offset, file);
      } else {
        // Rounded in slices, so a large tensor never needs a whole fp32 copy beside its bf16 one.
        constexpr int64_t kSlice = 1 << 20;
        std::vector<float> buf((size_t)std::min(n, kSlice));
        for (int64_t s = 0; s < n; s += kSlice) {
          const int64_t m = std::min(kSlice, n - s);
          read_exact(fd, reinterpret_cast<char*>(buf.data()), (size_t)m * 4, offset + (uint64_t)s * 4, file);
          for (int64_t i = 0; i < m; i++) out_half[s + i] = narrow(buf[i]);
        }
      }
    } else if ((dtype == "BF16" && to == DType::BF16) || (dtype == "F16" && to == DType::F16)) {
      read_exact(fd, out, (size_t)n * 2, offset, file);  // already the stored format: no conversion
    } else if (dtype == "BF16" || dtype == "F16") {
      std::vector<uint16_t> raw((size_t)n);
      read_exact(fd, reinterpret_cast<char*>(raw.data()), (size_t)n * 2, offset, file);
      const bool bf = dtype == "BF16";
      for (int64_t i = 0; i < n; i++) {
        const float f = bf ? bf16_to_f32(raw[i]) : f16_to_f32(raw[i]);
        if (to == DType::F32) out_f32[i] = f;
        else out_half[i] = narrow(f);
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
