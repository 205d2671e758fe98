#include "engine/model.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "engine/bf16.h"
#include "engine/profile.h"
#include "engine/random_fill.h"
#ifdef TUNEFORGE_CUDA
#include "cuda/fill.h"
#endif

namespace tf {

const std::array<const char*, NPROJ> kProjModule = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                     "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                                     "mlp.down_proj"};

namespace {

std::string layer_prefix(int l) { return "model.layers." + std::to_string(l) + "."; }

// Reallocates `t` only when its size changes, so steady-state steps do not touch the allocator.
void ensure(Tensor& t, std::vector<int64_t> shape, Device dev) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (!t.empty() && t.numel() == n && t.dtype() == DType::F32 && t.device() == dev) return;
  t = Tensor(std::move(shape), DType::F32, dev);
}

// A flat work buffer of at least n values (contents unspecified), reallocated only to grow.
Tensor& grow(Tensor& t, int64_t n, DType dt, Device dev) {
  if (t.numel() < n || t.dtype() != dt) {
    t.reset();  // release before allocating, so peak memory does not count both
    t = Tensor({n}, dt, dev);
  }
  return t;
}
float* scratch(Tensor& t, int64_t n, Device dev) { return grow(t, n, DType::F32, dev).f32(); }

// Inference on this many token rows or fewer with a KV cache (decoding steps up to batch 64) runs layer_decode.
constexpr int kDecodeRows = 64;

}  // namespace

Model::Model(ModelConfig cfg, std::unique_ptr<Backend> backend, DType weights)
    : cfg_(std::move(cfg)), be_(profiled(std::move(backend))), dev_(be_->device()), wdt_(weights) {
  const ModelConfig& c = cfg_;
  if (c.heads % c.kv_heads != 0 || c.head_dim % 2 != 0 || (int)c.inv_freq.size() != c.head_dim / 2)
    throw std::runtime_error("inconsistent model config (heads, kv_heads, head_dim or rope table)");
  if (wdt_ != DType::F32 && !is_half(wdt_)) throw std::runtime_error("base weights must be F32, BF16 or F16");
  if (wdt_ == DType::F16 && dev_ == Device::CPU)
    throw std::runtime_error("fp16 base weights are for GPUs without bf16 (compute capability below 8.0); on the "
                             "CPU load them as f32 or bf16");
  be_->set_weights_dtype(wdt_);  // a GPU runs attention's products in bf16 in bf16 mode
  // TUNEFORGE_CUDA_BF16_ACTIVATIONS=0 keeps them fp32 (to weigh the rounding passes against the memory they save).
  const char* acts = std::getenv("TUNEFORGE_CUDA_BF16_ACTIVATIONS");
  bf16_acts_ = wdt_ == DType::BF16 && dev_ != Device::CPU && !(acts && std::string(acts) == "0");
  fused_lora_ = be_->fused_lora();
  const char* up_order = std::getenv("TUNEFORGE_CUDA_LORA_UP");
  lora_up_first_ = fused_lora_ && !(up_order && std::string(up_order) == "add");
  const int D = c.hidden, qd = c.heads * c.head_dim, kd = c.kv_heads * c.head_dim;
  embed_ = embedding_table();
  norm_ = make({D});
  if (!c.tied) lm_head_ = make({c.vocab, D}, wdt_);
  inv_freq_ = make({(int64_t)c.inv_freq.size()});
  copy_from_host(inv_freq_, c.inv_freq.data());
  const int shapes[NPROJ][2] = {{qd, D}, {kd, D}, {kd, D}, {D, qd}, {c.inter, D}, {c.inter, D}, {D, c.inter}};
  const bool bias[NPROJ] = {c.qkv_bias, c.qkv_bias, c.qkv_bias, c.o_bias, c.mlp_bias, c.mlp_bias, c.mlp_bias};
  layers_.resize(c.layers);
  for (Layer& L : layers_) {
    L.ln1 = make({D});
    L.ln2 = make({D});
    if (c.qk_norm) {
      L.q_norm = make({c.head_dim});
      L.k_norm = make({c.head_dim});
    }
    for (int p = 0; p < NPROJ; p++) {
      Linear& lin = L.proj[p];
      lin.out = shapes[p][0];
      lin.in = shapes[p][1];
      if (p == O_PROJ || p == DOWN_PROJ) lin.w = make({lin.out, lin.in}, wdt_);  // the others: views (stacked)
      if (bias[p]) lin.b = make({lin.out});
    }
    L.qkv_w = stacked(L, {Q_PROJ, K_PROJ, V_PROJ});
    L.gate_up_w = stacked(L, {GATE_PROJ, UP_PROJ});
  }
}

// A frozen, untied embedding table is only ever read by the gather of a step's rows (N x hidden values, 29 MB of a
// 7B model's 1 GiB table for 4096 tokens), never by a product: on a GPU it stays in pinned host memory that the gather
// reads over the bus, as llama.cpp keeps token embeddings on the host. That is 1 GiB of GPU memory at Qwen2.5-7B:
// about 2.5 layers fewer to recompute under a 24 GiB limit. A tied table is the LM head too, read whole by every loss
// chunk, and full fine-tuning updates the table every step (set_full_finetune moves it): both stay on the device.
// Where pinned memory cannot be had the table stays on the device too. TUNEFORGE_CUDA_HOST_EMBEDDING=0 keeps it there
// (src/engine/precision.ts embeddingOnHost reads the same variable).
Tensor Model::embedding_table() {
  const std::vector<int64_t> shape = {cfg_.vocab, cfg_.hidden};
  const char* env = std::getenv("TUNEFORGE_CUDA_HOST_EMBEDDING");
  if (dev_ == Device::CPU || cfg_.tied || full_ft_ || (env && std::string(env) == "0")) return make(shape, wdt_);
  try {
    return Tensor::host_mapped(shape, wdt_);
  } catch (const std::bad_alloc&) {
    return make(shape, wdt_);
  }
}

Tensor Model::stacked(Layer& L, std::initializer_list<Proj> group) {
  const int in = L.proj[*group.begin()].in;
  int64_t rows = 0;
  for (Proj p : group) rows += L.proj[p].out;
  Tensor w = make({rows, in}, wdt_);
  int64_t at = 0;
  for (Proj p : group) {
    Linear& lin = L.proj[p];
    lin.w = Tensor::view(w, at * in, {lin.out, lin.in});
    at += lin.out;
  }
  return w;
}

Tensor* Model::weight(const std::string& name) {
  if (name == "model.embed_tokens.weight") return &embed_;
  if (name == "model.norm.weight") return &norm_;
  if (name == "lm_head.weight") return cfg_.tied ? nullptr : &lm_head_;
  for (int l = 0; l < cfg_.layers; l++) {
    const std::string pre = layer_prefix(l);
    if (name.rfind(pre, 0) != 0) continue;
    const std::string rest = name.substr(pre.size());
    Layer& L = layers_[l];
    if (rest == "input_layernorm.weight") return &L.ln1;
    if (rest == "post_attention_layernorm.weight") return &L.ln2;
    if (cfg_.qk_norm && rest == "self_attn.q_norm.weight") return &L.q_norm;
    if (cfg_.qk_norm && rest == "self_attn.k_norm.weight") return &L.k_norm;
    for (int p = 0; p < NPROJ; p++) {
      if (rest == std::string(kProjModule[p]) + ".weight") return &L.proj[p].w;
      if (rest == std::string(kProjModule[p]) + ".bias") return L.proj[p].b.empty() ? nullptr : &L.proj[p].b;
    }
  }
  return nullptr;
}

size_t Model::weight_bytes() {
  size_t n = 0;
  for (const std::string& name : weight_names()) n += weight(name)->bytes();
  return n;
}

std::vector<std::string> Model::weight_names() const {
  std::vector<std::string> names = {"model.embed_tokens.weight", "model.norm.weight"};
  if (!cfg_.tied) names.push_back("lm_head.weight");
  for (int l = 0; l < cfg_.layers; l++) {
    const std::string pre = layer_prefix(l);
    names.push_back(pre + "input_layernorm.weight");
    names.push_back(pre + "post_attention_layernorm.weight");
    if (cfg_.qk_norm) {
      names.push_back(pre + "self_attn.q_norm.weight");
      names.push_back(pre + "self_attn.k_norm.weight");
    }
    for (int p = 0; p < NPROJ; p++) {
      names.push_back(pre + kProjModule[p] + ".weight");
      if (!layers_[l].proj[p].b.empty()) names.push_back(pre + kProjModule[p] + ".bias");
    }
  }
  return names;
}

void Model::set_lora(const LoraConfig& c, const std::array<bool, NPROJ>& targets) {
  if (c.r <= 0) throw std::runtime_error("LoRA rank must be positive");
  if (c.dropout < 0 || c.dropout >= 1) throw std::runtime_error("LoRA dropout must be in [0, 1)");
  lora_cfg_ = c;
  dropout_calls_ = 0;
  trainable_stale_ = true;
  for (Layer& L : layers_)
    for (int p = 0; p < NPROJ; p++) {
      Linear& lin = L.proj[p];
      lin.lora.reset();
      if (!targets[p]) continue;
      // Attached only once complete: after an allocation failure no module holds empty (null) LoRA tensors.
      auto lora = std::make_unique<Lora>();
      lora->A = make({c.r, lin.in});
      lora->B = make({lin.out, c.r});
      lora->gA = make({c.r, lin.in});
      lora->gB = make({lin.out, c.r});
      lin.lora = std::move(lora);
    }
  acts_ = Acts();  // saved LoRA activations change shape
  layout_++;
}

std::map<std::string, Linear*> Model::lora_modules() {
  std::map<std::string, Linear*> out;
  for (int l = 0; l < cfg_.layers; l++)
    for (int p = 0; p < NPROJ; p++)
      if (layers_[l].proj[p].lora) out[layer_prefix(l) + kProjModule[p]] = &layers_[l].proj[p];
  return out;
}

void Model::set_full_finetune(bool on) {
  // bf16 weights cannot take fp32 updates in place (each step would round away most of the update).
  if (on && wdt_ != DType::F32)
    throw std::runtime_error(std::string("full fine-tuning needs fp32 base weights, but this model holds them in ") +
                             (wdt_ == DType::F16 ? "fp16" : "bf16") +
                             ": load it with f32 weights (half weights are for LoRA, whose weights stay fp32)");
  full_ft_ = on;
  trainable_stale_ = true;
  if (on && embed_.is_host_mapped()) {  // updated every step: onto the device (embedding_table)
    Tensor table = make(embed_.shape(), wdt_);
    copy_from_host(table, embed_.f32());  // host-mapped memory is host memory
    embed_ = std::move(table);
  }
  auto grad_like = [&](Tensor& g, const Tensor& w) {
    if (on && !w.empty()) g = make(w.shape());
    else g.reset();
  };
  grad_like(g_embed_, embed_);
  grad_like(g_norm_, norm_);
  grad_like(g_lm_head_, lm_head_);
  for (Layer& L : layers_) {
    grad_like(L.g_ln1, L.ln1);
    grad_like(L.g_ln2, L.ln2);
    grad_like(L.g_q_norm, L.q_norm);
    grad_like(L.g_k_norm, L.k_norm);
    for (Linear& lin : L.proj) {
      grad_like(lin.gw, lin.w);
      grad_like(lin.gb, lin.b);
    }
  }
}

const std::vector<ParamRef>& Model::trainable() {
  // Kept between calls (every step zeroes and updates them all): rebuilt only after set_lora or
  // set_full_finetune replaced the tensors.
  if (!trainable_stale_) return trainable_;
  std::vector<ParamRef>& out = trainable_;
  out.clear();
  auto add = [&](const std::string& name, Tensor& p, Tensor& g) {
    if (!g.empty()) out.push_back({name, &p, &g, p.f32(), g.f32(), p.numel()});
  };
  for (auto& [name, lin] : lora_modules()) {
    add(name + ".lora_A.weight", lin->lora->A, lin->lora->gA);
    add(name + ".lora_B.weight", lin->lora->B, lin->lora->gB);
  }
  if (full_ft_) {
    add("model.embed_tokens.weight", embed_, g_embed_);
    add("model.norm.weight", norm_, g_norm_);
    add("lm_head.weight", lm_head_, g_lm_head_);
    for (int l = 0; l < cfg_.layers; l++) {
      const std::string pre = layer_prefix(l);
      Layer& L = layers_[l];
      add(pre + "input_layernorm.weight", L.ln1, L.g_ln1);
      add(pre + "post_attention_layernorm.weight", L.ln2, L.g_ln2);
      add(pre + "self_attn.q_norm.weight", L.q_norm, L.g_q_norm);
      add(pre + "self_attn.k_norm.weight", L.k_norm, L.g_k_norm);
      for (int p = 0; p < NPROJ; p++) {
        add(pre + kProjModule[p] + ".weight", L.proj[p].w, L.proj[p].gw);
        add(pre + kProjModule[p] + ".bias", L.proj[p].b, L.proj[p].gb);
      }
    }
  }
  trainable_stale_ = false;
  return out;
}

void Model::zero_grads() {
  ProfileCall call("zero_grads");
  std::vector<float*> gs;
  std::vector<int64_t> ns;
  for (const ParamRef& p : trainable()) {
    gs.push_back(p.g);
    ns.push_back(p.n);
  }
  be_->zero_many(gs.data(), ns.data(), (int)gs.size());
}

void Model::set_checkpointed_layers(int k) {
  if (k < 0 || k > cfg_.layers)
    throw std::runtime_error("checkpointed layers " + std::to_string(k) + " not in [0, " +
                             std::to_string(cfg_.layers) + "]");
  if (k == ckpt_layers_) return;
  ckpt_layers_ = k;
  acts_ = Acts();  // the old layout's memory is given back now, not at the next step
}

void Model::ensure_acts(int N, Keep keep) {
  const ModelConfig& c = cfg_;
  const int ckpt = keep == Keep::kTrain ? ckpt_layers_ : 0;
  // Evaluation reuses training activations' first layer and residual; training needs the layout of its number of
  // checkpointed layers (another number reallocates, so the memory it saves is really given back).
  // (not a training layout with bf16 sets, whose run set lacks what inference writes in fp32)
  const bool reusable = keep == Keep::kInfer && !acts_.res.empty() && !acts_.runs_in_work();
  if (acts_.N == N && ((acts_.keep == keep && acts_.ckpt == ckpt) || reusable)) return;
  // N is set last: an allocation that throws (out of GPU memory) must not leave a half-built set that the next
  // call of the same size would take for complete and run on null pointers.
  acts_ = Acts();
  layout_++;
  const int64_t D = c.hidden, qd = c.heads * c.head_dim, kd = c.kv_heads * c.head_dim, F = c.inter;
  acts_.res.resize(keep == Keep::kInfer ? 1 : c.layers + 1);
  for (Tensor& r : acts_.res) r = make({N, D});
  acts_.ckpt = ckpt;
  acts_.layer.resize(keep == Keep::kInfer ? 1 : acts_.set_of(c.layers - 1) + 1);
  if (ckpt > 0) acts_.dropout_at.assign(c.layers, 0);
  // `big`: the dtype of the set's large tensors (the projections' outputs, attention's q, k, v, output).
  // `run_only`: the run set of training with bf16 sets (Acts::work), without the tensors made in the saved sets.
  auto make_set = [&](LayerActs& a, DType big, bool run_only) {
    a.rstd1 = make({N});
    a.q = make({N, qd}, big);
    if (!run_only) {
      a.k = make({N, kd}, big);
      a.v = make({N, kd}, big);
      a.att = make({N, qd}, big);
      a.g = make({N, F}, big);
      a.u = make({N, F}, big);
    }
    if (c.qk_norm) {
      if (!run_only) {
        a.q_pre = make({N, qd}, big);
        a.k_pre = make({N, kd}, big);
      }
      a.rstd_q = make({N, c.heads});
      a.rstd_k = make({N, c.kv_heads});
    }
    a.lse = make({N, c.heads});
    a.res2 = make({N, D});
    a.rstd2 = make({N});
  };
  // Training in bf16 on a GPU: the saved sets keep their large tensors in bf16, and layers run in one set.
  const bool kept_bf16 = bf16_acts_ && keep == Keep::kTrain;
  for (LayerActs& a : acts_.layer) make_set(a, kept_bf16 ? DType::BF16 : DType::F32, false);
  if (kept_bf16) make_set(acts_.work, DType::F32, true);
  // The projections' inputs are bf16 with bf16_acts_: nothing reads them in fp32 (GroupIn).
  const DType inputs = bf16_acts_ ? DType::BF16 : DType::F32;
  acts_.h1 = make({N, D}, inputs);
  acts_.h2 = make({N, D}, inputs);
  acts_.act = make({N, F}, inputs);
  acts_.hF = make({N, D});
  acts_.rstdF = make({N});
  acts_.tmp = make({N, D});
  acts_.rope = make({N, c.head_dim});
  acts_.N = N;
  acts_.keep = keep;
}

Model::LayerActs& Model::run_set(int set) { return acts_.runs_in_work() ? acts_.work : acts_.layer[set]; }

void Model::keep_set(int l) {
  if (acts_.runs_in_work()) transfer(acts_.work, acts_.layer[acts_.set_of(l)]);
}

Model::LayerActs& Model::backward_set(int l) {
  LayerActs& saved = acts_.layer[acts_.set_of(l)];
  if (!acts_.runs_in_work()) return saved;
  transfer(saved, acts_.work);
  return acts_.work;
}

// Tensors of one dtype in both sets (res2, the row statistics, LoRA's x A^T) trade places: `from`'s old
// values are not read again (the work set is refilled by the next layer, a saved set by the next forward), and the
// same buffers circulate. Nothing crosses between an fp32 tensor and a bf16 one: layer_forward's kernels write those
// into the saved set in bf16 as they make them, and backward reads them there (attention_bwd_h, qk_norm_rope_bwd,
// swiglu_*_h, LoRA's x) and writes gate's, up's, q's and k's dy over them.
void Model::transfer(LayerActs& from, LayerActs& to) {
  static constexpr Tensor LayerActs::*kTensors[] = {
      &LayerActs::rstd1,  &LayerActs::q,      &LayerActs::k,   &LayerActs::v,   &LayerActs::q_pre,
      &LayerActs::k_pre,  &LayerActs::rstd_q, &LayerActs::rstd_k, &LayerActs::att, &LayerActs::lse,
      &LayerActs::res2,   &LayerActs::rstd2,  &LayerActs::g,   &LayerActs::u};
  for (Tensor LayerActs::*f : kTensors) {
    Tensor& src = from.*f;
    Tensor& dst = to.*f;
    if (src.empty()) continue;
    if (src.dtype() == dst.dtype()) std::swap(src, dst);
  }
  for (int p = 0; p < NPROJ; p++) {
    std::swap(from.lin[p].xa, to.lin[p].xa);
    to.lin[p].drop_seed = from.lin[p].drop_seed;
  }
}

void Model::matmul_w(bool tw, int M, int N, int K, float alpha, const float* A, int lda, const Tensor& W,
                     float beta, float* C, int ldc) {
  const int ldw = (int)W.dim(1);
  if (W.dtype() == DType::BF16) be_->matmul_bf16w(tw, M, N, K, alpha, A, lda, W.bf16(), ldw, beta, C, ldc);
  else if (W.dtype() == DType::F16) be_->matmul_f16w(tw, M, N, K, alpha, A, lda, W.half(), ldw, beta, C, ldc);
  else be_->matmul(false, tw, M, N, K, alpha, A, lda, W.f32(), ldw, beta, C, ldc);
}

void Model::embed_rows(const Tensor& table, const int32_t* ids, int N, float* out) {
  const int C = (int)table.dim(1);
  if (table.dtype() == DType::BF16) be_->embedding_fwd_bf16(table.bf16(), ids, N, C, out);
  else if (table.dtype() == DType::F16) be_->embedding_fwd_f16(table.half(), ids, N, C, out);
  else be_->embedding_fwd(table.f32(), ids, N, C, out);
}

// Forward of the projections of one layer that read the same input x (q/k/v, gate/up, or a single one):
// y = x W^T + b + scale * (x A^T) B^T for each. The base products and the LoRA x A^T are independent pieces,
// run side by side where the backend can; the LoRA up-projections onto y follow. A GPU (fused LoRA) instead writes
// y = b + scale (x A^T) B^T first (lora_up, without reading y) and has the base product add onto it (beta 1): y's read
// moves from a bandwidth-bound pass of its own into the product's epilogue, which overlaps it with arithmetic.
// Dropout masks are numbered in the projections' order before anything runs, so they do not depend on which piece
// ran first.
void Model::linears_fwd(Layer& L, LayerActs& a, GroupIn in, std::initializer_list<ProjIO> outs, int N, bool train) {
  const int r = lora_cfg_.r;
  const bool drop = train && lora_cfg_.dropout > 0;
  // bf16 weights on a GPU: x is rounded to bf16 once for the group's products (matmul_bf16w would round it for each:
  // the same values, one kernel and one pass over x instead of up to three), unless it came in bf16. The CPU keeps x
  // in fp32.
  const Linear& first = L.proj[outs.begin()->proj];
  in = with_x16(in, first, N);
  const float* x = in.x;
  const uint16_t* x16 = in.x16;
  // LoRA reads the rounded input where activations are bf16 (bf16_acts_): backward then reads the same values.
  const uint16_t* lora_x16 = bf16_acts_ ? x16 : nullptr;
  const float p = drop ? lora_cfg_.dropout : 0.0f;
  const bool up = fused_lora_;
  auto product = [this, x, x16, N](const Linear& lin, float* y, uint16_t* y16, float beta) {
    if (x16)
      be_->matmul_bf16(false, true, N, lin.out, lin.in, 1.0f, x16, lin.in, lin.w.bf16(), lin.in, beta, y, y16, lin.out);
    else matmul_w(true, N, lin.out, lin.in, 1.0f, x, lin.in, lin.w, beta, y, lin.out);
  };
  // y that lora_up writes first (bias and LoRA), the product adding onto it after the pieces
  auto up_first = [this](const Linear& lin) { return lora_up_first_ && (lin.lora || !lin.b.empty()); };
  std::vector<Piece> pieces;
  for (const ProjIO& o : outs) {
    Linear& lin = L.proj[o.proj];
    LinSave& s = a.lin[o.proj];
    float* y = o.data;
    uint16_t* y16 = o.data16;
    if (y16 && (!x16 || !up)) throw std::logic_error("bf16 projection outputs need a bf16 input and lora_up");
    if ((y || y16) && !up_first(lin)) {
      pieces.push_back({(double)N * lin.out * lin.in, [&product, &lin, y, y16, N, this, up] {
                          product(lin, y, y16, 0.0f);
                          if (!lin.b.empty() && !up) be_->add_bias(y, lin.b.f32(), N, lin.out);
                        }});
    }
    if (!lin.lora) continue;
    // Allocations happen here, on this thread, before the pieces run.
    ensure(s.xa, {N, r}, dev_);
    if (drop) s.drop_seed = lora_cfg_.seed * 0x100000001b3ULL + dropout_calls_++;
    if (fused_lora_) {
      pieces.push_back({(double)N * r * lin.in, [this, &lin, &s, x, lora_x16, N, r, p] {
                          ProfileRegion region("lora.fwd");
                          be_->lora_down(x, lora_x16, N, lin.in, lin.lora->A.f32(), r, p, s.drop_seed, s.xa.f32());
                        }});
      continue;
    }
    float* xd = drop ? scratch(sc_.drop_x[o.proj], (int64_t)N * lin.in, dev_) : nullptr;
    pieces.push_back({(double)N * r * lin.in, [this, &lin, &s, x, N, r, xd] {
                        ProfileRegion region("lora.fwd");
                        const float* xin = x;
                        if (xd) {
                          // No mask: only backward uses it, and draws it again from the seed.
                          be_->dropout(x, nullptr, xd, (int64_t)N * lin.in, lora_cfg_.dropout, s.drop_seed);
                          xin = xd;
                        }
                        be_->matmul(false, true, N, r, lin.in, 1.0f, xin, lin.in, lin.lora->A.f32(), lin.in, 0.0f,
                                    s.xa.f32(), r);
                      }});
  }
  be_->concurrently(pieces);
  for (const ProjIO& o : outs) {
    if (!o.data && !o.data16) continue;
    Linear& lin = L.proj[o.proj];
    const float* bias = lin.b.empty() ? nullptr : lin.b.f32();
    if (up && (lin.lora || bias)) {
      {
        ProfileRegion region("lora.fwd");
        be_->lora_up(o.data, o.data16, N, lin.out, lin.lora ? a.lin[o.proj].xa.f32() : nullptr,
                     lin.lora ? lin.lora->B.f32() : nullptr, lin.lora ? r : 0, lora_cfg_.scale, bias,
                     !lora_up_first_);
      }
      if (up_first(lin)) product(lin, o.data, o.data16, 1.0f);
    } else if (lin.lora) {
      ProfileRegion region("lora.fwd");
      be_->matmul(false, true, N, lin.out, r, lora_cfg_.scale, a.lin[o.proj].xa.f32(), r, lin.lora->B.f32(), r, 1.0f,
                  o.data, lin.out);
    }
  }
}

Model::GroupIn Model::with_x16(GroupIn in, const Linear& first, int N) {
  if (in.x16 || first.w.dtype() != DType::BF16 || dev_ == Device::CPU) return in;
  uint16_t* buf = grow(sc_.x16, (int64_t)N * first.in, DType::BF16, dev_).bf16();
  be_->narrow_bf16(in.x, buf, (int64_t)N * first.in);
  return {in.x, buf};
}

bool Model::decoding_step(int N, bool train, const CacheAt& at) const {
  return fused_lora_ && !train && at.cache && N <= kDecodeRows;
}

void Model::decode_linears(Layer& L, GroupIn in, std::initializer_list<Proj> group, const Tensor& w, float* y, int N,
                           LoraUps& ups) {
  const Linear& first = L.proj[*group.begin()];
  in = with_x16(in, first, N);
  const int rows = (int)w.dim(0), r = lora_cfg_.r;
  ups = LoraUps{};
  ups.r = r;
  ups.scale = lora_cfg_.scale;
  float* xa = scratch(sc_.decode_xa, (int64_t)kMaxLoraTerms * N * std::max(r, 1), dev_);
  const float* A[kMaxLoraTerms];
  int count = 0, k = 0;
  for (Proj p : group) {
    const Linear& lin = L.proj[p];
    LoraUp& u = ups.p[k++];
    u.bias = lin.b.empty() ? nullptr : lin.b.f32();
    if (!lin.lora) continue;
    u.xa = xa + (int64_t)count * N * r;
    u.B = lin.lora->B.f32();
    A[count++] = lin.lora->A.f32();
  }
  auto product = [&] {
    if (in.x16)
      be_->matmul_bf16(false, true, N, rows, first.in, 1.0f, in.x16, first.in, w.bf16(), first.in, 0.0f, y, nullptr,
                       rows);
    else matmul_w(true, N, rows, first.in, 1.0f, in.x, first.in, w, 0.0f, y, rows);
  };
  if (count == 0) return product();
  // The product and LoRA's x A^T side by side: both read x, neither writes what the other reads
  be_->run_beside(product, [&] {
    ProfileRegion region("lora.fwd");
    // LoRA reads the rounded input where activations are bf16, as in linears_fwd
    be_->lora_apply_down(in.x, bf16_acts_ ? in.x16 : nullptr, N, first.in, r, A, count, xa);
  });
}

// Backward of linears_fwd for projections that read the same input x, their dy in `grads`:
// dx (+)= sum_p dy_p W_p + scale * (dy_p B_p) A_p; LoRA and full-FT weight gradients accumulate. The base
// input-gradient chain, each projection's weight gradients and each LoRA's gradients are independent pieces;
// the LoRA terms of dx are added after them, in the projections' order.
void Model::linears_bwd(Layer& L, LayerActs& a, GroupIn in, std::initializer_list<ProjIO> grads, int N, float* dx,
                        bool acc_dx) {
  if (bf16_acts_) return linears_bwd_bf16(L, a, in, grads, N, dx, acc_dx);
  const float* x = in.x;  // null for a bf16 input (in.x16): only fused LoRA reads it then (full FT keeps fp32)
  const int r = lora_cfg_.r;
  const bool drop = lora_cfg_.dropout > 0;
  const float p = lora_cfg_.dropout;
  std::vector<Piece> pieces;
  double chain = 0;
  for (const ProjIO& g : grads) chain = std::max(chain, (double)N * L.proj[g.proj].in * L.proj[g.proj].out);
  pieces.push_back({chain, [this, &L, grads, dx, acc_dx, N] {
                      bool acc = acc_dx;
                      for (const ProjIO& g : grads) {
                        Linear& lin = L.proj[g.proj];
                        matmul_w(false, N, lin.in, lin.out, 1.0f, g.data, lin.out, lin.w, acc ? 1.0f : 0.0f, dx,
                                 lin.in);
                        acc = true;
                      }
                    }});
  for (const ProjIO& g : grads) {
    Linear& lin = L.proj[g.proj];
    LinSave& s = a.lin[g.proj];
    const float* dy = g.data;
    if (!lin.gw.empty()) {
      pieces.push_back({(double)N * lin.in * lin.out, [this, &lin, x, dy, N] {
                          be_->matmul(true, false, lin.out, lin.in, N, 1.0f, dy, lin.out, x, lin.in, 1.0f,
                                      lin.gw.f32(), lin.in);
                          if (!lin.gb.empty()) be_->bias_grad(lin.gb.f32(), dy, N, lin.out);
                        }});
    }
    if (!lin.lora) continue;
    float* dxa = scratch(sc_.dxa[g.proj], (int64_t)N * r, dev_);
    // The CPU draws the forward's mask and dropped input again from their seed, into buffers of its own per projection
    // (the pieces may run side by side); the fused kernels draw the mask where they use it.
    const bool buffers = drop && !fused_lora_;
    float* mask = buffers ? scratch(sc_.drop_mask[g.proj], (int64_t)N * lin.in, dev_) : nullptr;
    float* xd = buffers ? scratch(sc_.drop_x[g.proj], (int64_t)N * lin.in, dev_) : nullptr;
    const uint16_t* x16 = in.x16;
    pieces.push_back({(double)N * r * std::max(lin.in, lin.out), [this, &lin, &s, x, x16, mask, xd, dy, dxa, N, r, p] {
                        ProfileRegion region("lora.bwd");
                        Lora& lo = *lin.lora;
                        const float sc = lora_cfg_.scale;
                        be_->matmul(true, false, lin.out, r, N, sc, dy, lin.out, s.xa.f32(), r, 1.0f, lo.gB.f32(), r);
                        be_->matmul(false, false, N, r, lin.out, sc, dy, lin.out, lo.B.f32(), r, 0.0f, dxa, r);
                        if (fused_lora_) {
                          be_->lora_down_grad(x, x16, N, lin.in, dxa, r, p, s.drop_seed, lo.gA.f32());
                          return;
                        }
                        if (xd) be_->dropout(x, mask, xd, (int64_t)N * lin.in, p, s.drop_seed);
                        const float* xin = xd ? xd : x;
                        be_->matmul(true, false, r, lin.in, N, 1.0f, dxa, r, xin, lin.in, 1.0f, lo.gA.f32(), lin.in);
                      }});
  }
  be_->concurrently(pieces);
  if (fused_lora_) return lora_dx_group(L, a, grads, N, dx);
  ProfileRegion region("lora.bwd");
  for (const ProjIO& g : grads) {
    Linear& lin = L.proj[g.proj];
    if (!lin.lora) continue;
    const float* dxa = sc_.dxa[g.proj].f32();
    if (drop) {
      const int64_t n = (int64_t)N * lin.in;
      float* t = scratch(sc_.drop, n, dev_);
      be_->matmul(false, false, N, lin.in, r, 1.0f, dxa, r, lin.lora->A.f32(), lin.in, 0.0f, t, lin.in);
      be_->mul(t, sc_.drop_mask[g.proj].f32(), n);
      be_->add(dx, t, n);
    } else {
      be_->matmul(false, false, N, lin.in, r, 1.0f, dxa, r, lin.lora->A.f32(), lin.in, 1.0f, dx, lin.in);
    }
  }
}

void Model::lora_dx_group(Layer& L, LayerActs& a, std::initializer_list<ProjIO> grads, int N, float* dx) {
  ProfileRegion region("lora.bwd");
  LoraTerm terms[kMaxLoraTerms];
  int count = 0;
  for (const ProjIO& g : grads)
    if (Linear& lin = L.proj[g.proj]; lin.lora)
      terms[count++] = {lin.lora->A.f32(), sc_.dxa[g.proj].f32(), a.lin[g.proj].drop_seed};
  if (count > 0) be_->lora_dx(dx, N, L.proj[grads.begin()->proj].in, lora_cfg_.r, lora_cfg_.dropout, terms, count);
}

// A GPU's bf16 weights and activations: dy is rounded to bf16 once per projection, and its three products read that
// rounding: the base product (bitwise what matmul_bf16w gave: it rounded dy the same way, inside) and LoRA's gB and
// dy B, which then run on tensor cores and read half the bytes (fp32, they read dy twice at 4 bytes). LoRA's x A^T and
// B are rounded for them too (autocast rounds all of these). The projections run one after another (a GPU runs a
// group's pieces in order anyway) and share one rounded dy; the base products add into dx in the order linears_bwd
// uses.
void Model::linears_bwd_bf16(Layer& L, LayerActs& a, GroupIn in, std::initializer_list<ProjIO> grads, int N, float* dx,
                             bool acc_dx) {
  const int r = lora_cfg_.r;
  const float p = lora_cfg_.dropout;
  // The group's LoRA x A^T and B rounded for its products, in one launch (in sc_.lora16: [N, r] then [out, r] each).
  std::array<uint16_t*, NPROJ> xa16{}, b16{};
  {
    int64_t total = 0;
    for (const ProjIO& g : grads)
      if (L.proj[g.proj].lora) total += (int64_t)r * (N + L.proj[g.proj].out);
    NarrowJobs jobs;
    uint16_t* at = total > 0 ? grow(sc_.lora16, total, DType::BF16, dev_).bf16() : nullptr;
    for (const ProjIO& g : grads) {
      Linear& lin = L.proj[g.proj];
      if (!lin.lora) continue;
      xa16[g.proj] = at;
      b16[g.proj] = at + (int64_t)N * r;
      jobs.add(a.lin[g.proj].xa.f32(), xa16[g.proj], (int64_t)N * r);
      jobs.add(lin.lora->B.f32(), b16[g.proj], (int64_t)lin.out * r);
      at += (int64_t)r * (N + lin.out);
    }
    ProfileRegion region("lora.bwd");
    if (jobs.count > 0) be_->narrow_bf16_many(jobs);
  }
  bool acc = acc_dx;
  for (const ProjIO& g : grads) {
    Linear& lin = L.proj[g.proj];
    const int64_t n = (int64_t)N * lin.out;
    const uint16_t* dy16 = g.data16;
    if (!dy16) {
      uint16_t* buf = grow(sc_.dy16, n, DType::BF16, dev_).bf16();
      be_->narrow_bf16(g.data, buf, n);
      dy16 = buf;
    }
    be_->matmul_bf16(false, false, N, lin.in, lin.out, 1.0f, dy16, lin.out, lin.w.bf16(), lin.in, acc ? 1.0f : 0.0f,
                     dx, nullptr, lin.in);
    acc = true;
    if (!lin.lora) continue;
    ProfileRegion region("lora.bwd");
    Lora& lo = *lin.lora;
    const LinSave& s = a.lin[g.proj];
    const float sc = lora_cfg_.scale;
    float* dxa = scratch(sc_.dxa[g.proj], (int64_t)N * r, dev_);
    be_->matmul_bf16(true, false, lin.out, r, N, sc, dy16, lin.out, xa16[g.proj], r, 1.0f, lo.gB.f32(), nullptr, r);
    be_->matmul_bf16(false, false, N, r, lin.out, sc, dy16, lin.out, b16[g.proj], r, 0.0f, dxa, nullptr, r);
    be_->lora_down_grad(in.x, in.x16, N, lin.in, dxa, r, p, s.drop_seed, lo.gA.f32());
  }
  lora_dx_group(L, a, grads, N, dx);
}

void Model::forward_core(const int32_t* ids, const int32_t* pos, int B, int Tq, const int32_t* key_valid,
                         const int32_t* seg, const CacheAt& at, bool train) {
  const ModelConfig& c = cfg_;
  const int N = B * Tq, D = c.hidden, hd = c.head_dim;
  ensure_acts(N, train ? Keep::kTrain : Keep::kInfer);
  ProfileRegion region("layers.fwd");
  embed_rows(embed_, ids, N, acts_.res[0].f32());
  be_->rope_table(pos, inv_freq_.f32(), N, hd, acts_.rope.f32());
  // Inference chains the norms (layer_forward's `chained`): layer 0's input norm here, each later one and the final
  // norm with the residual add before it.
  const bool chained = !train;
  if (chained) normed(acts_.res[0].f32(), layers_[0].ln1, N, acts_.h1, run_set(0).rstd1);
  for (int l = 0; l < c.layers; l++) {
    if (train && l < acts_.ckpt) acts_.dropout_at[l] = dropout_calls_;
    float* xin = acts_.res[train ? l : 0].f32();
    float* xout = acts_.res[train ? l + 1 : 0].f32();
    layer_forward(l, run_set(train ? acts_.set_of(l) : 0), xin, xout, B, Tq, key_valid, seg, at, train, chained);
    if (train) keep_set(l);
  }
  if (!chained)
    be_->rmsnorm_fwd(acts_.res[c.layers].f32(), norm_.f32(), N, D, c.eps, acts_.hF.f32(), acts_.rstdF.f32());
}

void Model::normed(const float* x, const Tensor& w, int N, Tensor& out, Tensor& rstd) {
  if (out.dtype() == DType::BF16) be_->rmsnorm_fwd_bf16(x, w.f32(), N, cfg_.hidden, cfg_.eps, out.bf16(), rstd.f32());
  else be_->rmsnorm_fwd(x, w.f32(), N, cfg_.hidden, cfg_.eps, out.f32(), rstd.f32());
}

void Model::added_normed(const float* x, const float* y, float* sum, const Tensor& w, int N, Tensor& out,
                         Tensor& rstd, const LoraUps& ups) {
  const bool half = out.dtype() == DType::BF16;
  be_->add_rmsnorm(x, y, w.f32(), N, cfg_.hidden, cfg_.eps, sum, half ? nullptr : out.f32(), half ? out.bf16() : nullptr,
                   rstd.f32(), ups);
}

void Model::renormed(int l, LayerActs& a, int N) {
  if (acts_.normed_layer == l) return;
  const Layer& L = layers_[l];
  normed(acts_.res[l].f32(), L.ln1, N, acts_.h1, a.rstd1);
  // add_rmsnorm made h2 in the forward from the sums it wrote to res2, as rmsnorm_fwd makes it from res2 here
  normed(a.res2.f32(), L.ln2, N, acts_.h2, a.rstd2);
  acts_.normed_layer = l;
}

void Model::swiglu(const LayerActs& a, int N) {
  const int64_t n = (int64_t)N * cfg_.inter;
  if (acts_.act.dtype() == DType::BF16)
    be_->swiglu_fwd_bf16(a.g.f32(), a.u.f32(), n, acts_.act.bf16(), nullptr, nullptr);
  else be_->swiglu_fwd(a.g.f32(), a.u.f32(), n, acts_.act.f32());
}

// Attention's inputs for layer l: q (fp32, in a.q), k and v, from the layer's q, k and v products, qk-norm (Qwen3) and
// the rotation; with a cache, k and v written into it at the step's slots.
void Model::attention_inputs(int l, LayerActs& a, LayerActs* keep, int B, int Tq, const CacheAt& at, bool train) {
  const ModelConfig& c = cfg_;
  const int N = B * Tq, hd = c.head_dim, kd = c.kv_heads * hd;
  Layer& L = layers_[l];
  const float* q_w = c.qk_norm ? L.q_norm.f32() : nullptr;
  const float* k_w = c.qk_norm ? L.k_norm.f32() : nullptr;
  // With bf16 sets the products write q, k, v straight into the saved set in bf16 (q and k before qk-norm: into q_pre,
  // k_pre; without it into q, k, rotated there in place), and qk_norm_rope reads them there: no fp32 copy of them, of
  // k, or of v exists, and attention reads K and V in bf16. Otherwise fp32 in the run set.
  float* qdst = keep ? nullptr : c.qk_norm ? a.q_pre.f32() : a.q.f32();
  float* kdst = keep ? nullptr : c.qk_norm ? a.k_pre.f32() : a.k.f32();
  uint16_t* q16 = keep ? (c.qk_norm ? keep->q_pre : keep->q).bf16() : nullptr;
  uint16_t* k16 = keep ? (c.qk_norm ? keep->k_pre : keep->k).bf16() : nullptr;
  uint16_t* v16 = keep ? keep->v.bf16() : nullptr;
  linears_fwd(L, a, group_in(acts_.h1), {{Q_PROJ, qdst, q16}, {K_PROJ, kdst, k16}, {V_PROJ, keep ? nullptr : a.v.f32(), v16}},
              N, train);
  // qk-norm (Qwen3) from q_pre/k_pre, then the rotation, in place without it; with bf16 sets from and into the saved
  // set (q in fp32 too: attention's input)
  QkCopies copies;
  if (keep) copies = {q16, k16, keep->q.bf16(), keep->k.bf16(), true};
  be_->qk_norm_rope(qdst, kdst, q_w, k_w, acts_.rope.f32(), N, c.heads, c.kv_heads, hd, c.eps, a.q.f32(),
                    keep ? nullptr : a.k.f32(), c.qk_norm ? a.rstd_q.f32() : nullptr,
                    c.qk_norm ? a.rstd_k.f32() : nullptr, copies);
  if (KVCache* cache = at.cache) {
    Tensor &ck = cache->k[l], &cv = cache->v[l];
    if (ck.dtype() == DType::BF16)
      be_->cache_write_bf16(ck.bf16(), cv.bf16(), a.k.f32(), a.v.f32(), B, Tq, cache->S, at.off, at.off_dev, kd);
    else be_->cache_write(ck.f32(), cv.f32(), a.k.f32(), a.v.f32(), B, Tq, cache->S, at.off, at.off_dev, kd);
  }
}

// Attention of q (a.q) over layer l's cache, up to the step's slots, into a.att (and att16 when given).
void Model::cached_attention(int l, LayerActs& a, int B, int Tq, const CacheAt& at, uint16_t* att16) {
  const ModelConfig& c = cfg_;
  KVCache& cache = *at.cache;
  Tensor &ck = cache.k[l], &cv = cache.v[l];
  const AttnDims d{B, Tq, cache.S, at.off, c.heads, c.kv_heads, c.head_dim, at.off_dev};
  if (ck.dtype() == DType::BF16)
    be_->attention_fwd_kv16(d, a.q.f32(), ck.bf16(), cv.bf16(), cache.valid.i32(), nullptr, a.att.f32(), a.lse.f32(),
                            att16);
  else
    be_->attention_fwd(d, a.q.f32(), ck.f32(), cv.f32(), cache.valid.i32(), nullptr, a.att.f32(), a.lse.f32(), att16);
}

// A decoding step's layer: each projection group one product (q/k/v and gate/up over their stacked weights) and one
// call for its LoRA x A^T; the products' readers add the biases and LoRA's up-projections as they read them
// (qkv_to_cache, which also norms, rotates and writes the cache; add_rmsnorm; swiglu_fwd_stacked). Results are those
// of layer_forward's path, summed in the same order.
void Model::layer_decode(int l, LayerActs& a, const float* xin, float* xout, int B, int Tq, const CacheAt& at) {
  const ModelConfig& c = cfg_;
  const int N = B * Tq, hd = c.head_dim, qd = c.heads * hd, kd = c.kv_heads * hd;
  Layer& L = layers_[l];
  KVCache& cache = *at.cache;
  float* tmp = acts_.tmp.f32();
  const int64_t width = std::max(qd + 2 * kd, 2 * c.inter);
  float* stacked = scratch(sc_.stacked, N * width, dev_);  // q, k, v (then gate, up) side by side in each row
  LoraUps ups;
  decode_linears(L, group_in(acts_.h1), {Q_PROJ, K_PROJ, V_PROJ}, L.qkv_w, stacked, N, ups);
  Tensor &ck = cache.k[l], &cv = cache.v[l];
  const bool kv16 = ck.dtype() == DType::BF16;
  be_->qkv_to_cache(stacked, qd + 2 * kd, c.qk_norm ? L.q_norm.f32() : nullptr, c.qk_norm ? L.k_norm.f32() : nullptr,
                    acts_.rope.f32(), B, Tq, c.heads, c.kv_heads, hd, c.eps, a.q.f32(), kv16 ? nullptr : ck.f32(),
                    kv16 ? nullptr : cv.f32(), kv16 ? ck.bf16() : nullptr, kv16 ? cv.bf16() : nullptr, cache.S, at.off,
                    at.off_dev, ups);
  // attention's output in bf16 for o_proj where activations are bf16
  uint16_t* att16 = bf16_acts_ ? grow(sc_.x16, a.att.numel(), DType::BF16, dev_).bf16() : nullptr;
  cached_attention(l, a, B, Tq, at, att16);
  decode_linears(L, att16 ? GroupIn{nullptr, att16} : group_in(a.att), {O_PROJ}, L.proj[O_PROJ].w, tmp, N, ups);
  added_normed(xin, tmp, a.res2.f32(), L.ln2, N, acts_.h2, a.rstd2, ups);  // res2 = xin + o(...), h2 = norm(res2)
  decode_linears(L, group_in(acts_.h2), {GATE_PROJ, UP_PROJ}, L.gate_up_w, stacked, N, ups);
  const bool half = acts_.act.dtype() == DType::BF16;
  be_->swiglu_fwd_stacked(stacked, N, c.inter, half ? nullptr : acts_.act.f32(), half ? acts_.act.bf16() : nullptr,
                          ups);
  decode_linears(L, group_in(acts_.act), {DOWN_PROJ}, L.proj[DOWN_PROJ].w, tmp, N, ups);
  // xout (may be xin: read above) = res2 + down(...), and the next layer's input norm (or the final one)
  if (l + 1 < c.layers) added_normed(a.res2.f32(), tmp, xout, layers_[l + 1].ln1, N, acts_.h1, a.rstd1, ups);
  else added_normed(a.res2.f32(), tmp, xout, norm_, N, acts_.hF, acts_.rstdF, ups);
}

void Model::layer_forward(int l, LayerActs& a, const float* xin, float* xout, int B, int Tq,
                          const int32_t* key_valid, const int32_t* seg, const CacheAt& at, bool train, bool chained) {
  const ModelConfig& c = cfg_;
  const int N = B * Tq, D = c.hidden, hd = c.head_dim;
  if (decoding_step(N, train, at)) {
    if (!chained || !xout) throw std::logic_error("a decoding step runs chained, with an output");
    return layer_decode(l, a, xin, xout, B, Tq, at);
  }
  Layer& L = layers_[l];
  float* tmp = acts_.tmp.f32();
  // Training with bf16 sets: the layer's saved set, into which the products, qk_norm_rope and attention write q, k, v
  // (and q_pre, k_pre), attention's output, g and u in bf16 as they make them.
  LayerActs* keep = train && acts_.runs_in_work() ? &acts_.layer[acts_.set_of(l)] : nullptr;
  if (!chained) normed(xin, L.ln1, N, acts_.h1, a.rstd1);
  attention_inputs(l, a, keep, B, Tq, at, train);
  // Attention's output, o_proj's input: in bf16 straight from attention where activations are bf16 (into the saved set
  // in training, else a work buffer), fp32 in a.att otherwise.
  uint16_t* att16 = nullptr;
  if (keep) att16 = keep->att.bf16();
  else if (bf16_acts_) att16 = grow(sc_.x16, a.att.numel(), DType::BF16, dev_).bf16();
  if (at.cache) {
    cached_attention(l, a, B, Tq, at, att16);
  } else if (keep) {
    AttnDims d{B, Tq, Tq, 0, c.heads, c.kv_heads, hd};
    be_->attention_fwd_kv16(d, a.q.f32(), keep->k.bf16(), keep->v.bf16(), key_valid, seg, nullptr, a.lse.f32(), att16);
  } else {
    AttnDims d{B, Tq, Tq, 0, c.heads, c.kv_heads, hd};
    be_->attention_fwd(d, a.q.f32(), a.k.f32(), a.v.f32(), key_valid, seg, a.att.f32(), a.lse.f32(), att16);
  }
  linears_fwd(L, a, att16 ? GroupIn{nullptr, att16} : group_in(a.att), {{O_PROJ, tmp}}, N, train);
  added_normed(xin, tmp, a.res2.f32(), L.ln2, N, acts_.h2, a.rstd2);  // res2 = xin + o(...), h2 = norm(res2)
  acts_.normed_layer = train ? l : -1;
  if (keep) {  // gate and up write the saved set's g and u in bf16, which swiglu reads
    linears_fwd(L, a, group_in(acts_.h2), {{GATE_PROJ, nullptr, keep->g.bf16()}, {UP_PROJ, nullptr, keep->u.bf16()}}, N,
                train);
  } else {
    linears_fwd(L, a, group_in(acts_.h2), {{GATE_PROJ, a.g.f32()}, {UP_PROJ, a.u.f32()}}, N, train);
  }
  // A recomputation (no xout) needs down_proj's LoRA x A^T and dropout seed, which backward reads, but not its product
  // (a third of the layer's forward): linears_fwd with no output runs only the LoRA part, and without LoRA on down_proj
  // not even its input is made.
  if (!xout && !L.proj[DOWN_PROJ].lora) return;
  if (keep) be_->swiglu_fwd_h(keep->g.bf16(), keep->u.bf16(), (int64_t)N * c.inter, acts_.act.bf16());
  else swiglu(a, N);
  linears_fwd(L, a, group_in(acts_.act), {{DOWN_PROJ, xout ? tmp : nullptr}}, N, train);
  if (!xout) return;
  // xout may alias xin (inference): xin was read above
  if (!chained) be_->add_out(xout, a.res2.f32(), tmp, (int64_t)N * D);
  else if (l + 1 < c.layers) added_normed(a.res2.f32(), tmp, xout, layers_[l + 1].ln1, N, acts_.h1, a.rstd1);
  else added_normed(a.res2.f32(), tmp, xout, norm_, N, acts_.hF, acts_.rstdF);
}

namespace {

// HF positions: 0..T-1 per row, restarting at every segment boundary when sequences are packed.
std::vector<int32_t> default_positions(const Batch& b) {
  std::vector<int32_t> pos((size_t)b.rows * b.T);
  for (int r = 0; r < b.rows; r++) {
    int p = 0;
    for (int t = 0; t < b.T; t++) {
      const size_t i = (size_t)r * b.T + t;
      if (b.seg && t > 0 && b.seg[i] != b.seg[i - 1]) p = 0;
      pos[i] = p++;
    }
  }
  return pos;
}

// A batch's integer inputs where the backend reads them (uploaded once per call on CUDA, the host arrays on the
// CPU); positions are the batch's own or the default ones.
struct BatchInputs {
  std::vector<int32_t> pos_host;
  DeviceInts ids, mask, seg, pos;
  BatchInputs(Device dev, const Batch& b) {
    const size_t n = (size_t)b.rows * b.T;
    if (!b.pos) pos_host = default_positions(b);
    ids = DeviceInts(dev, b.ids, n);
    mask = DeviceInts(dev, b.mask, n);
    seg = DeviceInts(dev, b.seg, n);
    pos = DeviceInts(dev, b.pos ? b.pos : pos_host.data(), n);
  }
};

}  // namespace

void Model::check_ids(const int32_t* ids, int64_t n) const {
  for (int64_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= cfg_.vocab)
      throw std::runtime_error("token id " + std::to_string(ids[i]) + " out of vocabulary");
}

void Model::forward_logits(const Batch& b, float* logits) {
  ProfileCall call("forward_logits");
  const int N = b.rows * b.T;
  check_ids(b.ids, N);
  BatchInputs in(dev_, b);
  forward_core(in.ids.get(), in.pos.get(), b.rows, b.T, in.mask.get(), in.seg.get(), {}, false);
  ProfileRegion region("head");
  HostFloats out(dev_, logits, (int64_t)N * cfg_.vocab);
  matmul_w(true, N, cfg_.vocab, cfg_.hidden, 1.0f, acts_.hF.f32(), cfg_.hidden, head(), 0.0f, out.get(), cfg_.vocab);
  out.finish();
}

float* Model::Carver::take(int64_t n) {
  float* p = base ? base + used : nullptr;
  used += (n + 63) / 64 * 64;
  return p;
}

Model::HeadBuffers Model::carve_head(Carver& k, int chunk, int N, bool backward) const {
  const int64_t D = cfg_.hidden;
  HeadBuffers h;
  h.logits = k.take(chunk * (int64_t)cfg_.vocab);
  h.hc = k.take(chunk * D);
  if (backward) {
    h.dhc = k.take(chunk * D);
    h.dhF = k.take(N * D);
  }
  return h;
}

float* Model::phases(int chunk, int N, bool backward) {
  Carver head, attn, dact;
  carve_head(head, chunk, N, backward);
  if (backward) {
    carve_attn_grads(attn, N);
    dact.take((int64_t)N * cfg_.inter);
  }
  return scratch(sc_.phases, std::max({head.used, attn.used, dact.used}), dev_);
}

Model::AttnGrads Model::carve_attn_grads(Carver& k, int N) const {
  const ModelConfig& c = cfg_;
  const int64_t qd = (int64_t)c.heads * c.head_dim, kd = (int64_t)c.kv_heads * c.head_dim;
  AttnGrads g;
  g.datt = k.take(N * qd);
  g.dq = k.take(N * qd);
  g.dk = k.take(N * kd);
  g.dv = k.take(N * kd);
  // (bf16 activations: the norms' gradients go over the saved bf16 q_pre, k_pre instead)
  if (c.qk_norm && !bf16_acts_) {
    g.dq_pre = k.take(N * qd);
    g.dk_pre = k.take(N * kd);
  }
  g.per_head = k.take((int64_t)N * c.heads);
  return g;
}

// Each chunk streams the whole head matrix through both head GEMMs (packing it, transposed, for the logits), so
// chunks of a large vocabulary are made long: at least 256 rows (a 152K-vocabulary LoRA step: 128-row chunks ran
// the head at 141 GFLOP/s, 256-row ones 9% faster in all; 27-row chunks once ran at half speed), more when the
// vocabulary is small (64 MB of logits). Chunks are evened out: 600 rows run as 3 x 200, not 256 + 256 + 88.
int Model::loss_chunk_rows(int n_rows) const {
  const int cap = std::min(n_rows, loss_chunk_ > 0 ? loss_chunk_ : std::max(256, (1 << 24) / cfg_.vocab));
  const int chunks = (n_rows + cap - 1) / cap;
  return (n_rows + chunks - 1) / chunks;
}

void Model::collect_targets(const Batch& b, std::vector<int32_t>& rows, std::vector<int32_t>& targets) const {
  // Causal-LM targets: position t predicts label t+1 of the same row (and, packed, the same segment).
  for (int r = 0; r < b.rows; r++)
    for (int t = 0; t + 1 < b.T; t++) {
      const int i = r * b.T + t;
      const int y = b.labels[i + 1];
      if (y == -100) continue;
      if (b.seg && b.seg[i + 1] != b.seg[i]) continue;
      if (y < 0 || y >= cfg_.vocab) throw std::runtime_error("label " + std::to_string(y) + " out of vocabulary");
      rows.push_back(i);
      targets.push_back(y);
    }
}

LossResult Model::eval_loss(const Batch& b) {
  ProfileCall call("eval_loss");
  const int D = cfg_.hidden, V = cfg_.vocab;
  std::vector<int32_t> rows, targets;
  collect_targets(b, rows, targets);
  LossResult res;
  res.tokens = (int64_t)rows.size();
  if (rows.empty()) return res;
  check_ids(b.ids, (int64_t)b.rows * b.T);
  BatchInputs in(dev_, b);
  forward_core(in.ids.get(), in.pos.get(), b.rows, b.T, in.mask.get(), in.seg.get(), {}, false);
  ProfileRegion region("head");
  const int n_rows = (int)rows.size();
  const DeviceInts rows_d(dev_, rows.data(), rows.size()), targets_d(dev_, targets.data(), targets.size());
  const int chunk = loss_chunk_rows(n_rows);
  const int N = b.rows * b.T;
  Carver k{phases(chunk, N, false)};
  const HeadBuffers h = carve_head(k, chunk, N, false);
  float *hc = h.hc, *logits = h.logits;
  for (int s = 0; s < n_rows; s += chunk) {
    const int n = std::min(chunk, n_rows - s);
    be_->embedding_fwd(acts_.hF.f32(), rows_d.get() + s, n, D, hc);
    matmul_w(true, n, V, D, 1.0f, hc, D, head(), 0.0f, logits, V);
    res.loss_sum += be_->cross_entropy(logits, targets_d.get() + s, n, V, 0.0f);  // gradient unused
  }
  return res;
}

LossResult Model::forward_backward(const Batch& b, float grad_scale) {
  ProfileCall call("forward_backward");
  const ModelConfig& c = cfg_;
  const int N = b.rows * b.T, D = c.hidden, V = c.vocab, hd = c.head_dim;
  const int F = c.inter;
  std::vector<int32_t> rows, targets;
  collect_targets(b, rows, targets);
  LossResult res;
  res.tokens = (int64_t)rows.size();
  if (rows.empty()) return res;
  const float gs = grad_scale > 0 ? grad_scale : 1.0f / (float)rows.size();

  check_ids(b.ids, N);
  BatchInputs in(dev_, b);
  const DeviceInts rows_d(dev_, rows.data(), rows.size()), targets_d(dev_, targets.data(), targets.size());
  forward_core(in.ids.get(), in.pos.get(), b.rows, b.T, in.mask.get(), in.seg.get(), {}, true);

  // Loss head in chunks of rows so [tokens, vocab] logits never exist at once.
  const int n_rows = (int)rows.size();
  const int chunk = loss_chunk_rows(n_rows);
  // The head's buffers, MLP backward's dact and attention backward's gradients take turns in Scratch::phases.
  float* const shared = phases(chunk, N, true);
  float* dres = scratch(sc_.dres, (int64_t)N * D, dev_);
  // bf16 activations: every norm's backward also rounds the residual gradient it leaves, the dy down's and o's
  // backward read next (instead of a rounding pass of their own)
  uint16_t* dres16 = bf16_acts_ ? grow(sc_.dres16, (int64_t)N * D, DType::BF16, dev_).bf16() : nullptr;
  {
    ProfileRegion region("head");
    Carver k{shared};
    const HeadBuffers h = carve_head(k, chunk, N, true);
    float *hc = h.hc, *dhc = h.dhc, *logits = h.logits, *dhF = h.dhF;
    be_->zero(dhF, (int64_t)N * D);  // rows without a target get no gradient
    Tensor& gh = head_grad();
    for (int s = 0; s < n_rows; s += chunk) {
      const int n = std::min(chunk, n_rows - s);
      be_->embedding_fwd(acts_.hF.f32(), rows_d.get() + s, n, D, hc);
      matmul_w(true, n, V, D, 1.0f, hc, D, head(), 0.0f, logits, V);
      res.loss_sum += be_->cross_entropy(logits, targets_d.get() + s, n, V, gs);
      matmul_w(false, n, D, V, 1.0f, logits, V, head(), 0.0f, dhc, D);
      be_->scatter_add_rows(dhF, rows_d.get() + s, n, D, dhc);  // rows with a target: each once
      if (!gh.empty()) be_->matmul(true, false, V, D, n, 1.0f, logits, V, hc, D, 1.0f, gh.f32(), D);
    }
    be_->rmsnorm_bwd(acts_.res[c.layers].f32(), norm_.f32(), acts_.rstdF.f32(), dhF, N, D, dres, false,
                     g_norm_.empty() ? nullptr : g_norm_.f32(), dres16);
  }

  float* dh = scratch(sc_.dh, (int64_t)N * D, dev_);
  // dact is dead once swiglu's backward has read it, before o_proj's backward makes datt (and alive again only in the
  // next layer's down_proj backward, after q/k/v's backward read the last of the attention gradients).
  float* dact = shared;
  Carver k{shared};
  const AttnGrads ag = carve_attn_grads(k, N);
  float *datt = ag.datt, *dq = ag.dq, *dk = ag.dk, *dv = ag.dv, *dq_pre = ag.dq_pre, *dk_pre = ag.dk_pre;
  float* attn_scratch = ag.per_head;
  auto gptr = [](Tensor& t) { return t.empty() ? nullptr : t.f32(); };
  ProfileRegion region("layers.bwd");
  for (int l = c.layers - 1; l >= 0; l--) {
    Layer& L = layers_[l];
    // Checkpointed layers (0..ckpt-1): refill the shared activation set from the layer's saved input. Layer
    // ckpt-1 is not recomputed: it was the last to write the shared set in the forward, and the layers above it
    // have sets of their own, so its activations are still there. The dropout counter is rewound rather than the
    // masks kept: a mask is [N, in] per LoRA module, which kept for every layer would eat much of the saving, and
    // redrawing it is bitwise the same.
    if (l + 1 < acts_.ckpt) {
      ProfileRegion recompute("layers.recompute");
      const uint64_t after = dropout_calls_;
      dropout_calls_ = acts_.dropout_at[l];
      layer_forward(l, run_set(0), acts_.res[l].f32(), nullptr, b.rows, b.T, in.mask.get(), in.seg.get(), {}, true,
                    false);
      keep_set(l);  // kept as any layer is (rounded, with bf16 sets): the gradients do not depend on the layout
      dropout_calls_ = after;
    }
    LayerActs& a = backward_set(l);
    renormed(l, a, N);
    // With bf16 sets, q, k, v (and q_pre, k_pre), attention's output, g and u are read from the layer's saved set as
    // they are, in bf16 (transfer); otherwise `a` is the saved set.
    LayerActs& saved = acts_.layer[acts_.set_of(l)];
    const bool bf16_saved = bf16_acts_;  // training with bf16_acts_ always saves bf16 sets (ensure_acts)
    // res[l+1] = res2 + down(swiglu(gate(h2), up(h2)))
    // down_proj's input, made again from the saved gate and up (bitwise what the forward made; from their rounded
    // copies with bf16 sets)
    if (bf16_saved) be_->swiglu_fwd_h(saved.g.bf16(), saved.u.bf16(), (int64_t)N * F, acts_.act.bf16());
    else swiglu(a, N);
    linears_bwd(L, a, group_in(acts_.act), {{DOWN_PROJ, dres, dres16}}, N, dact, false);
    // dg and du over g and u, which nothing reads after this (in place: the kernel reads each element before writing
    // it): two [N, intermediate] buffers fewer, the largest of the backward's. With bf16 sets, over the saved bf16 g
    // and u, in bf16: gate's and up's products read dy in bf16.
    if (bf16_saved) {
      uint16_t* dg = saved.g.bf16();
      uint16_t* du = saved.u.bf16();
      be_->swiglu_bwd_h(dg, du, dact, (int64_t)N * F, dg, du);
      linears_bwd(L, a, group_in(acts_.h2), {{GATE_PROJ, nullptr, dg}, {UP_PROJ, nullptr, du}}, N, dh, false);
    } else {
      be_->swiglu_bwd(a.g.f32(), a.u.f32(), dact, (int64_t)N * F, a.g.f32(), a.u.f32());
      linears_bwd(L, a, group_in(acts_.h2), {{GATE_PROJ, a.g.f32()}, {UP_PROJ, a.u.f32()}}, N, dh, false);
    }
    be_->rmsnorm_bwd(a.res2.f32(), L.ln2.f32(), a.rstd2.f32(), dh, N, D, dres, true, gptr(L.g_ln2), dres16);
    // res2 = res[l] + o(attention(rope(q), rope(k), v))
    linears_bwd(L, a, group_in(saved.att), {{O_PROJ, dres, dres16}}, N, datt, false);
    AttnDims d{b.rows, b.T, b.T, 0, c.heads, c.kv_heads, hd};
    if (bf16_saved)
      be_->attention_bwd_h(d, saved.q.bf16(), saved.k.bf16(), saved.v.bf16(), in.mask.get(), in.seg.get(),
                           saved.att.bf16(), a.lse.f32(), datt, dq, dk, dv, attn_scratch);
    else
      be_->attention_bwd(d, a.q.f32(), a.k.f32(), a.v.f32(), in.mask.get(), in.seg.get(), a.att.f32(), a.lse.f32(),
                         datt, dq, dk, dv, attn_scratch);
    // rope's inverse, then (qk-norm) the norms' backward into dq_pre, dk_pre, from q and k before the norm as saved.
    // With bf16 sets the results are the q and k products' dy in bf16, written over the saved q_pre, k_pre (or q, k
    // without qk-norm), which nothing reads after this.
    const bool pre16 = c.qk_norm && saved.q_pre.dtype() == DType::BF16;
    const float* q_pre = c.qk_norm && !pre16 ? a.q_pre.f32() : nullptr;
    const float* k_pre = c.qk_norm && !pre16 ? a.k_pre.f32() : nullptr;
    uint16_t* dq16 = bf16_saved ? (c.qk_norm ? saved.q_pre : saved.q).bf16() : nullptr;
    uint16_t* dk16 = bf16_saved ? (c.qk_norm ? saved.k_pre : saved.k).bf16() : nullptr;
    be_->qk_norm_rope_bwd(dq, dk, q_pre, k_pre, pre16 ? saved.q_pre.bf16() : nullptr,
                          pre16 ? saved.k_pre.bf16() : nullptr, c.qk_norm ? L.q_norm.f32() : nullptr,
                          c.qk_norm ? L.k_norm.f32() : nullptr, c.qk_norm ? a.rstd_q.f32() : nullptr,
                          c.qk_norm ? a.rstd_k.f32() : nullptr, acts_.rope.f32(), N, c.heads, c.kv_heads, hd,
                          dq16 ? nullptr : dq_pre, dk16 ? nullptr : dk_pre, gptr(L.g_q_norm), gptr(L.g_k_norm), dq16,
                          dk16);
    float* dqp = c.qk_norm ? dq_pre : dq;
    float* dkp = c.qk_norm ? dk_pre : dk;
    if (bf16_saved)
      linears_bwd(L, a, group_in(acts_.h1), {{Q_PROJ, nullptr, dq16}, {K_PROJ, nullptr, dk16}, {V_PROJ, dv}}, N, dh, false);
    else linears_bwd(L, a, group_in(acts_.h1), {{Q_PROJ, dqp}, {K_PROJ, dkp}, {V_PROJ, dv}}, N, dh, false);
    // Below layer 0 only the embedding (full fine-tuning) wants the gradient: skip it in LoRA mode.
    if (l > 0 || !g_embed_.empty() || !L.g_ln1.empty())
      be_->rmsnorm_bwd(acts_.res[l].f32(), L.ln1.f32(), a.rstd1.f32(), dh, N, D, dres, true, gptr(L.g_ln1),
                       l > 0 ? dres16 : nullptr);
  }
  if (!g_embed_.empty()) be_->embedding_bwd(g_embed_.f32(), in.ids.get(), N, D, dres);
  return res;
}

// The fixed buffers of single-token steps and their recording: the inputs [ids (B), positions (B), slot], the
// last logits [B, vocab] and greedy tokens [B], where the recorded kernels read and write them.
struct DecodeStep {
  Tensor in, logits, tokens;
  std::unique_ptr<Recording> recording;
  bool argmax = false;      // the recording also picks the greedy tokens
  bool ran = false;         // a step ran directly under `layout`: its buffers are allocated, recording may start
  bool refused = false;     // the backend records nothing (the CPU, the profiler): every step runs directly
  uint64_t layout = 0;      // Model::layout_ when the step last ran directly or was recorded
  int64_t replayed = 0;
};

KVCache::KVCache() = default;
KVCache::~KVCache() = default;
KVCache::KVCache(KVCache&&) noexcept = default;
KVCache& KVCache::operator=(KVCache&&) noexcept = default;
int64_t KVCache::replayed_steps() const { return step ? step->replayed : 0; }
size_t KVCache::step_launches() const { return step && step->recording ? step->recording->launches() : 0; }
size_t KVCache::step_depth() const { return step && step->recording ? step->recording->depth() : 0; }

// bf16 mode on a GPU keeps keys and values in bf16: half the memory, and half the bytes each decoding step reads
// (at batch 32 the cache can outweigh the weights). Its attention products take K and V in bf16 in that mode anyway;
// the CPU computes attention in fp32 and keeps an fp32 cache.
KVCache Model::make_cache(int B, int S) {
  KVCache c;
  c.B = B;
  c.S = S;
  const int64_t kd = (int64_t)cfg_.kv_heads * cfg_.head_dim;
  const DType kv = wdt_ == DType::BF16 && dev_ != Device::CPU ? DType::BF16 : DType::F32;
  for (int l = 0; l < cfg_.layers; l++) {
    c.k.push_back(make({B, S, kd}, kv));
    c.v.push_back(make({B, S, kd}, kv));
  }
  c.valid = make({B, S}, DType::I32);
  c.valid_host.assign((size_t)B * S, 0);
  return c;
}

void Model::decode(KVCache& cache, const int32_t* ids, const int32_t* pos, int Tq, int off, float* logits,
                   int32_t* argmax) {
  if (!logits && !argmax) throw std::invalid_argument("decode: nothing to return (no logits and no argmax)");
  if (off < 0 || off + Tq > cache.S) throw std::runtime_error("KV cache is full");
  ProfileCall call("decode");
  const size_t n = (size_t)cache.B * Tq;
  check_ids(ids, (int64_t)n);
  // On a GPU single-token steps go through fixed buffers and a recording; the CPU has nothing to record, and its
  // kernels write the host's logits directly.
  if (Tq == 1 && dev_ != Device::CPU) return decode_step(cache, ids, pos, off, logits, argmax);
  const DeviceInts ids_d(dev_, ids, n), pos_d(dev_, pos, n);
  forward_core(ids_d.get(), pos_d.get(), cache.B, Tq, nullptr, nullptr, {&cache, off, nullptr}, false);
  std::vector<int32_t> last(cache.B);
  for (int b = 0; b < cache.B; b++) last[b] = b * Tq + Tq - 1;
  const DeviceInts last_d(dev_, last.data(), last.size());
  Tensor h = make({cache.B, cfg_.hidden});
  be_->embedding_fwd(acts_.hF.f32(), last_d.get(), cache.B, cfg_.hidden, h.f32());
  const int64_t n_logits = (int64_t)cache.B * cfg_.vocab;
  if (logits) {
    HostFloats out(dev_, logits, n_logits);  // only the last tokens' logits come back
    matmul_w(true, cache.B, cfg_.vocab, cfg_.hidden, 1.0f, h.f32(), cfg_.hidden, head(), 0.0f, out.get(), cfg_.vocab);
    if (argmax) greedy_tokens(out.get(), cache.B, argmax);  // before finish(): reads the device copy
    out.finish();
    return;
  }
  Tensor z = make({cache.B, cfg_.vocab});  // the logits stay on the device
  matmul_w(true, cache.B, cfg_.vocab, cfg_.hidden, 1.0f, h.f32(), cfg_.hidden, head(), 0.0f, z.f32(), cfg_.vocab);
  greedy_tokens(z.f32(), cache.B, argmax);
}

// A step first runs directly (sizing the activations and the backend's work buffers for B rows), the next one is
// recorded, and the others replay the recording; whatever moved the tensors it holds (layout_, or the backend's
// buffers: replay() says no) sends it back to a direct run. Recorded or not, the same kernels run on the same
// buffers, the slot included (read on the device), so the outputs do not depend on which way a step ran.
void Model::decode_step(KVCache& cache, const int32_t* ids, const int32_t* pos, int off, float* logits,
                        int32_t* argmax) {
  const int B = cache.B, D = cfg_.hidden, V = cfg_.vocab;
  if (!cache.step) {
    auto st = std::make_unique<DecodeStep>();
    st->in = make({2 * B + 1}, DType::I32);
    st->logits = make({B, V});
    st->tokens = make({B}, DType::I32);
    cache.step = std::move(st);
  }
  DecodeStep& st = *cache.step;
  std::vector<int32_t> in(ids, ids + B);
  in.insert(in.end(), pos, pos + B);
  in.push_back(off);
  copy_from_host(st.in, in.data());
  const bool pick = argmax != nullptr;
  auto body = [this, &cache, &st, B, D, V, off, pick] {
    const int32_t* in = st.in.i32();
    forward_core(in, in + B, B, 1, nullptr, nullptr, {&cache, off, in + 2 * B}, false);
    matmul_w(true, B, V, D, 1.0f, acts_.hF.f32(), D, head(), 0.0f, st.logits.f32(), V);
    if (pick) be_->argmax_rows(st.logits.f32(), B, V, st.tokens.i32());
  };
  if (st.recording && (st.layout != layout_ || st.argmax != pick)) st.recording.reset();
  if (!st.recording && st.ran && st.layout == layout_ && !st.refused) {
    st.recording = be_->record(body);
    st.refused = !st.recording;
    st.argmax = pick;
  }
  if (st.recording && st.recording->replay()) {
    st.replayed++;
  } else {
    st.recording.reset();
    body();
    st.ran = true;
    st.layout = layout_;
  }
  if (logits) copy_to_host(logits, st.logits, sizeof(float) * (size_t)B * V);
  if (argmax) copy_to_host(argmax, st.tokens, sizeof(int32_t) * (size_t)B);
}

void Model::greedy_tokens(const float* logits, int B, int32_t* out_host) {
  ProfileRegion region("head");
  Tensor tok = make({B}, DType::I32);
  be_->argmax_rows(logits, B, cfg_.vocab, tok.i32());
  copy_to_host(out_host, tok, sizeof(int32_t) * (size_t)B);
}

void Model::merged_weight(const std::string& module, float* out) {
  auto mods = lora_modules();
  auto it = mods.find(module);
  if (it == mods.end()) throw std::runtime_error("no LoRA module named " + module);
  Linear& L = *it->second;
  HostFloats merged(dev_, out, L.w.numel());
  // W in the base's dtype, widened to fp32 (exactly) before the fp32 update is added.
  if (L.w.dtype() == DType::BF16) be_->widen_bf16(L.w.bf16(), merged.get(), L.w.numel());
  else if (L.w.dtype() == DType::F16) be_->widen_f16(L.w.half(), merged.get(), L.w.numel());
  else be_->copy(merged.get(), L.w.f32(), L.w.numel());
  be_->matmul(false, false, L.out, L.in, lora_cfg_.r, lora_cfg_.scale, L.lora->B.f32(), lora_cfg_.r,
              L.lora->A.f32(), L.in, 1.0f, merged.get(), L.in);
  merged.finish();
}

void Model::randomize(uint64_t seed, float std) {
  const std::vector<std::string> names = weight_names();
  for (size_t t = 0; t < names.size(); t++) {
    const std::string& name = names[t];
    Tensor& w = *weight(name);
    const int64_t n = w.numel();
    auto ends_with = [&](const char* suffix) {
      const size_t k = std::char_traits<char>::length(suffix);
      return name.size() >= k && name.compare(name.size() - k, k, suffix) == 0;
    };
    const bool bf16 = w.dtype() == DType::BF16;
    if (w.dtype() == DType::I32) throw std::runtime_error("randomize: " + name + " is not a float tensor");
    if (ends_with(".bias") || ends_with("norm.weight")) {
      // HF's init: biases 0, RMSNorm scales (input/post-attention/final/q/k norms) 1. Both are fp32 tensors.
      const std::vector<float> v((size_t)n, ends_with(".bias") ? 0.0f : 1.0f);
      copy_from_host(w, v.data());
      continue;
    }
    const uint64_t key = splitmix64(seed * 0x9e3779b97f4a7c15ULL + t);
    if (dev_ == Device::CPU) {
      if (bf16) {
        uint16_t* p = w.bf16();
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) p[i] = f32_to_bf16(std * random_normal(key, i));
      } else {
        float* p = w.f32();
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) p[i] = std * random_normal(key, i);
      }
    } else {
#ifdef TUNEFORGE_CUDA
      if (bf16) cuda::fill_normal_bf16(w.bf16(), n, key, std);
      else if (w.dtype() == DType::F16) cuda::fill_normal_f16(w.half(), n, key, std);
      else cuda::fill_normal(w.f32(), n, key, std);
#else
      throw std::runtime_error("randomize: this build has no CUDA backend");
#endif
    }
  }
}

}  // namespace tf
