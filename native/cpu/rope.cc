// Rotary position embedding, HF "rotate_half" layout: pairs (i, i + hd/2) rotate by pos * inv_freq[i].
// The angle is formed in fp32 exactly as HF does (inv_freq fp32 times position), so long positions round
// the same way as the reference; cos/sin are then evaluated precisely, once per batch (rope_table).
#include <cmath>

#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace tf::cpu {

void rope_table(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs) {
  const int half = hd / 2;
  // cos and sin in double are the costly part: ~50 ns a pair, so fork early.
  parallel_for(N, (int64_t)N * hd * 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++)
      for (int j = 0; j < half; j++) {
        const float angle = (float)pos[i] * inv_freq[j];
        cs[i * hd + j] = (float)std::cos((double)angle);
        cs[i * hd + half + j] = (float)std::sin((double)angle);
      }
  });
}

void rope(float* x, const float* cs, int N, int heads, int hd, bool inverse) {
  const int half = hd / 2;
  const float sign = inverse ? -1.0f : 1.0f;
  parallel_for(N, (int64_t)N * heads * hd, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float* c = cs + i * hd;
      const float* s = c + half;
      for (int h = 0; h < heads; h++) {
        float* xh = x + (i * heads + h) * hd;
#pragma omp simd
        for (int j = 0; j < half; j++) {
          const float a = xh[j], b = xh[j + half], sj = sign * s[j];
          xh[j] = a * c[j] - b * sj;
          xh[j + half] = b * c[j] + a * sj;
        }
      }
    }
  });
}

}  // namespace tf::cpu
