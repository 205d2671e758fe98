// bfloat16 <-> float32 on the host. bf16 is the top half of an fp32 bit pattern, so widening is a shift and
// narrowing rounds the dropped 16 bits to nearest, ties to even (what torch and the GPU conversions do).
#pragma once
#include <cstdint>
#include <cstring>

namespace tf {

inline float bf16_to_f32(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace tf
