// AdamW (PyTorch semantics) over the model's trainable parameters, with global grad-norm clipping. The moments
// live on the backend's device, next to the parameters.
#pragma once
#include <vector>

#include "engine/backend.h"
#include "engine/model.h"

namespace tf {

struct AdamWConfig {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  float max_grad_norm = 0.0f;  // <= 0: no clipping
};

// L2 norm of all gradients together (double accumulation).
double grad_norm(Backend& be, const std::vector<ParamRef>& params);

class AdamW {
 public:
  // One update. Returns the gradient norm measured before clipping (as torch clip_grad_norm_ does).
  double step(Backend& be, const std::vector<ParamRef>& params, const AdamWConfig& c);
  int64_t steps() const { return t_; }
  // Moments per parameter (same order as the params list); empty before the first step.
  std::vector<Tensor>& m() { return m_; }
  std::vector<Tensor>& v() { return v_; }
  // Restores a checkpointed state: allocates zero moments for `params` (on `device`, the model's) and sets
  // the step count.
  void restore(const std::vector<ParamRef>& params, int64_t steps, Device device);
  void reset() {
    m_.clear();
    v_.clear();
    t_ = 0;
  }

 private:
  std::vector<Tensor> m_, v_;
  int64_t t_ = 0;
};

}  // namespace tf
