#include "engine/optim.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine/profile.h"

namespace tf {

double grad_norm(Backend& be, const std::vector<ParamRef>& params) {
  // One batched reduction (one device-to-host copy per step on a GPU, not one per parameter), same order.
  std::vector<const float*> xs;
  std::vector<int64_t> ns;
  xs.reserve(params.size());
  ns.reserve(params.size());
  for (const ParamRef& p : params) {
    xs.push_back(p.g);
    ns.push_back(p.n);
  }
  return std::sqrt(be.sum_squares_many(xs.data(), ns.data(), (int)params.size()));
}

double AdamW::step(Backend& be, const std::vector<ParamRef>& params, const AdamWConfig& c) {
  ProfileCall call("adamw_step");
  ProfileRegion region("optimizer");
  if (m_.size() != params.size()) {
    if (!m_.empty()) throw std::runtime_error("the set of trainable parameters changed; reset the optimizer");
    // Built aside and kept only when complete, so running out of memory here does not leave a partial state
    // that the next step would report as a changed parameter set.
    std::vector<Tensor> m, v;
    for (const ParamRef& p : params) {
      m.emplace_back(std::vector<int64_t>{p.n}, DType::F32, be.device());
      v.emplace_back(std::vector<int64_t>{p.n}, DType::F32, be.device());
    }
    m_ = std::move(m);
    v_ = std::move(v);
  }
  const double norm = grad_norm(be, params);
  if (c.max_grad_norm > 0) {
    // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
    const double coef = c.max_grad_norm / (norm + 1e-6);
    if (coef < 1.0)
      for (const ParamRef& p : params) be.scale(p.g, (float)coef, p.n);
  }
  t_++;
  const AdamWHyper h{c.lr, c.beta1, c.beta2, c.eps, c.weight_decay, t_};
  // One batched call (one fork on the CPU instead of one per tensor).
  std::vector<float*> ps, ms, vs;
  std::vector<const float*> gs;
  std::vector<int64_t> ns;
  for (size_t i = 0; i < params.size(); i++) {
    ps.push_back(params[i].p);
    gs.push_back(params[i].g);
    ms.push_back(m_[i].f32());
    vs.push_back(v_[i].f32());
    ns.push_back(params[i].n);
  }
  be.adamw_many(ps.data(), gs.data(), ms.data(), vs.data(), ns.data(), (int)params.size(), h);
  return norm;
}

void AdamW::restore(const std::vector<ParamRef>& params, int64_t steps, Device device) {
  reset();
  std::vector<Tensor> m, v;  // kept only when complete (see step)
  for (const ParamRef& p : params) {
    m.emplace_back(std::vector<int64_t>{p.n}, DType::F32, device);
    v.emplace_back(std::vector<int64_t>{p.n}, DType::F32, device);
  }
  m_ = std::move(m);
  v_ = std::move(v);
  t_ = steps;
}

}  // namespace tf
