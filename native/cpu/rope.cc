// Rotary position embedding, HF "rotate_half" layout: pairs (i, i + hd/2) rotate by pos * inv_freq[i].
// The angle is formed in fp32 exactly as HF does (inv_freq fp32 times position), so long positions round
// the same way as the reference; cos/sin are then evaluated precisely, once per batch (rope_table).
#include <cmath>

#include "cpu/kernels.h"

namespace tf::cpu {

void rope_table(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs) {
  const int half = hd / 2;
#pragma omp parallel for schedule(static) if ((int64_t)N * hd >= kParallelMin)
  for (int i = 0; i < N; i++)
    for (int j = 0; j < half; j++) {
      const float angle = (float)pos[i] * inv_freq[j];
      cs[(int64_t)i * hd + j] = (float)std::cos((double)angle);
      cs[(int64_t)i * hd + half + j] = (float)std::sin((double)angle);
    }
}

void rope(float* x, const float* cs, int N, int heads, int hd, bool inverse) {
  const int half = hd / 2;
  const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static) if ((int64_t)N * heads * hd >= kParallelMin)
  for (int i = 0; i < N; i++) {
    const float* c = cs + (int64_t)i * hd;
    const float* s = c + half;
    for (int h = 0; h < heads; h++) {
      float* xh = x + ((int64_t)i * heads + h) * hd;
#pragma omp simd
      for (int j = 0; j < half; j++) {
        const float a = xh[j], b = xh[j + half], sj = sign * s[j];
        xh[j] = a * c[j] - b * sj;
        xh[j + half] = b * c[j] + a * sj;
      }
    }
  }
}

}  // namespace tf::cpu
