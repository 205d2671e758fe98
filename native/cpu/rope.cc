// Rotary position embedding, HF "rotate_half" layout: pairs (i, i + hd/2) rotate by pos * inv_freq[i].
// The angle is formed in fp32 exactly as HF does (inv_freq fp32 times position), so long positions round
// the same way as the reference; cos/sin are then evaluated precisely.
#include <cmath>

#include "cpu/kernels.h"

namespace tf::cpu {

void rope(float* x, const int32_t* pos, const float* inv_freq, int N, int heads, int hd, bool inverse) {
  const int half = hd / 2;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < half; j++) {
      const float angle = (float)pos[i] * inv_freq[j];
      const float c = (float)std::cos((double)angle);
      const float s = inverse ? -(float)std::sin((double)angle) : (float)std::sin((double)angle);
      for (int h = 0; h < heads; h++) {
        float* xh = x + ((int64_t)i * heads + h) * hd;
        const float a = xh[j], b = xh[j + half];
        xh[j] = a * c - b * s;
        xh[j + half] = b * c + a * s;
      }
    }
  }
}

}  // namespace tf::cpu
