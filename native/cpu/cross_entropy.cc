// Softmax cross-entropy over the vocabulary, fused with its gradient (in place on the logits chunk).
// OpenMP over rows, each row vectorised. A row (600 KB for a 152K vocabulary) stays in L2 across its three
// passes: max; exp(z - max) written in place while summing (in double: see vec.h); scale by grad_scale / sum.
#include <cmath>
#include <cstring>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/vec.h"

namespace tf::cpu {

namespace {

float row_max(const float* z, int n) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int j = 0; j < n; j++) m = z[j] > m ? z[j] : m;
  return m;
}

void scale_row(float* z, int n, float s) {
#pragma omp simd
  for (int j = 0; j < n; j++) z[j] *= s;
}

}  // namespace

double cross_entropy(float* logits, const int32_t* targets, int N, int V, float grad_scale) {
  return parallel_sum(N, (int64_t)N * V, [&](int64_t i0, int64_t i1) {
    double loss = 0;
    for (int64_t i = i0; i < i1; i++) {
      float* z = logits + i * V;
      const int t = targets[i];
      if (t < 0) {
        std::memset(z, 0, sizeof(float) * V);
        continue;
      }
      const float zt = z[t];
      const float mx = row_max(z, V);
      if (grad_scale == 0.0f) {  // evaluation: the loss only (the gradient is all zeros)
        loss += mx + std::log(vec::exp_sum(z, V, mx, nullptr)) - zt;
        std::memset(z, 0, sizeof(float) * V);
        continue;
      }
      const double sum = vec::exp_sum(z, V, mx, z);
      loss += mx + std::log(sum) - zt;
      scale_row(z, V, (float)(grad_scale / sum));
      z[t] -= grad_scale;
    }
    return loss;
  });
}

}  // namespace tf::cpu
