// Softmax cross-entropy over the vocabulary, fused with its gradient (in place on the logits chunk).
#include <cmath>

#include "cpu/kernels.h"

namespace tf::cpu {

double cross_entropy(float* logits, const int32_t* targets, int N, int V, float grad_scale) {
  double loss = 0;
#pragma omp parallel for reduction(+ : loss) schedule(static)
  for (int i = 0; i < N; i++) {
    float* z = logits + (int64_t)i * V;
    const int t = targets[i];
    if (t < 0) {
      for (int j = 0; j < V; j++) z[j] = 0.0f;
      continue;
    }
    float mx = z[0];
    for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
    double sum = 0;
    for (int j = 0; j < V; j++) sum += std::exp((double)z[j] - mx);
    const double lse = mx + std::log(sum);
    loss += lse - z[t];
    for (int j = 0; j < V; j++) z[j] = (float)(std::exp((double)z[j] - lse) * grad_scale);
    z[t] -= grad_scale;
  }
  return loss;
}

}  // namespace tf::cpu
