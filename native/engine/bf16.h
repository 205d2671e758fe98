// bfloat16 and IEEE half (fp16) <-> float32 on the host. bf16 is the top half of an fp32 bit pattern, so widening
// is a shift and narrowing rounds the dropped 16 bits to nearest, ties to even (what torch and the GPU conversions
// do). fp16 (5 exponent bits) widens exactly, subnormals included, and narrows to nearest even, overflowing to inf.
#pragma once
#include <cstdint>
#include <cstring>

namespace tf {

inline float float_of_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t bits_of_float(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bf16_to_f32(uint16_t h) { return float_of_bits((uint32_t)h << 16); }

inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = bits_of_float(f);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
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
  return float_of_bits(u);
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t u = bits_of_float(f);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00;  // NaN (quiet)
  if (a >= 0x477ff000u) return sign | 0x7c00;  // rounds past 65504: inf
  if (a < 0x38800000u) {                       // below 2^-14: a subnormal (or zero) half
    // The half's units are 2^-24: shift the 24-bit significand down, rounding to nearest even.
    if (a < 0x33000000u) return sign;  // below half of the smallest subnormal: zero
    const uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // 113 + 13 - e: from 2^(e-150) units to 2^-24 units
    const uint32_t q = m >> shift, rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    return sign | (uint16_t)(q + (rest > half || (rest == half && (q & 1))));
  }
  // Normal: rebias the exponent, round the 13 dropped bits to nearest even (a carry may reach the exponent).
  const uint32_t r = a - 0x38000000u;  // exponent 127 -> 15
  return sign | (uint16_t)((r + 0xfffu + ((r >> 13) & 1u)) >> 13);
}

}  // namespace tf
