// The decoder-only transformer (qwen2 / qwen3 / llama / mistral), forward and backward written out
// explicitly (llm.c style) against tf::Backend. LoRA on any subset of the 7 projections; optional full
// fine-tuning (a gradient for every weight). Activations for backward live in engine-owned tensors.
#pragma once
#include <array>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/tensor.h"

namespace tf {

struct ModelConfig {
  int vocab = 0, hidden = 0, inter = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  float eps = 1e-6f;
  bool tied = false, qkv_bias = false, o_bias = false, mlp_bias = false, qk_norm = false;
  std::vector<float> inv_freq;  // head_dim / 2 rotary frequencies (scaling already applied by the caller)
};

enum Proj { Q_PROJ, K_PROJ, V_PROJ, O_PROJ, GATE_PROJ, UP_PROJ, DOWN_PROJ, NPROJ };
// Module path of each projection inside a decoder layer, as in HF checkpoints.
extern const std::array<const char*, NPROJ> kProjModule;

struct Lora {
  Tensor A, B, gA, gB;  // A [r, in], B [out, r]
};

struct Linear {
  int in = 0, out = 0;
  Tensor w, b;    // [out, in], [out] (bias optional)
  Tensor gw, gb;  // full fine-tuning only
  std::unique_ptr<Lora> lora;
};

struct Layer {
  Tensor ln1, ln2, q_norm, k_norm;
  Tensor g_ln1, g_ln2, g_q_norm, g_k_norm;  // full fine-tuning only
  std::array<Linear, NPROJ> proj;
  // The weights of projections that read one input, one tensor each: [q; k; v] and [gate; up], rows in that order.
  // Those projections' w are views into them, so a decoding step runs each group as one product.
  Tensor qkv_w, gate_up_w;
};

struct LoraConfig {
  int r = 0;
  float scale = 1.0f;  // alpha / r, or alpha / sqrt(r) for rsLoRA: decided by the caller
  float dropout = 0.0f;
  uint64_t seed = 0;
};

// One training/eval batch of `rows` sequences of T tokens (row-major [rows, T]), in HOST memory; the model
// uploads what the kernels read once per call (DeviceInts).
struct Batch {
  int rows = 0, T = 0;
  const int32_t* ids = nullptr;
  const int32_t* mask = nullptr;    // 1 = real token, 0 = padding (keys with 0 are never attended)
  const int32_t* labels = nullptr;  // -100 = no loss; forward_backward only
  const int32_t* seg = nullptr;     // optional packing: attention stays within equal ids, positions restart
  const int32_t* pos = nullptr;     // optional explicit positions
};

struct LossResult {
  double loss_sum = 0;
  int64_t tokens = 0;
};

struct DecodeStep;  // model.cc: the fixed buffers and the recording of single-token decoding steps

// Keys and values of every layer for generation: [B, S, KV*hd] each (F32, or BF16 in bf16 mode on a GPU), plus
// which slots are real.
struct KVCache {
  int B = 0, S = 0;
  std::vector<Tensor> k, v;
  Tensor valid;                     // I32 [B, S] on the model's device, what attention reads
  std::vector<int32_t> valid_host;  // the host's copy: generation edits this, then sync_valid()
  void sync_valid() { copy_from_host(valid, valid_host.data()); }
  // Single-token steps run from fixed buffers so that one recorded step (Backend::record: a CUDA graph) replays
  // them all. Made at the first such step.
  std::unique_ptr<DecodeStep> step;
  int64_t replayed_steps() const;  // steps run by replaying the recording
  size_t step_launches() const;    // kernels and copies the recording holds (0: none)
  size_t step_depth() const;       // the longest chain of them (Recording::depth)

  KVCache();
  ~KVCache();
  KVCache(KVCache&&) noexcept;
  KVCache& operator=(KVCache&&) noexcept;
};

// A trainable tensor and its gradient. p/g point into the model's device memory (device pointers on CUDA):
// the host reads and writes them only through copy_to_host/copy_from_host on param/grad.
struct ParamRef {
  std::string name;
  Tensor* param;
  Tensor* grad;
  float* p;
  float* g;
  int64_t n;
};

class Model {
 public:
  // Every tensor lives on the backend's device (Backend::device()). `weights` is the dtype of the frozen
  // projection weights, the embedding and the LM head: F32, or BF16 (bf16 mode: half the memory, products
  // through Backend::matmul_bf16w); norms, biases, LoRA, gradients and optimizer state are always F32.
  Model(ModelConfig cfg, std::unique_ptr<Backend> backend, DType weights = DType::F32);

  const ModelConfig& config() const { return cfg_; }
  Backend& backend() { return *be_; }
  Device device() const { return dev_; }
  DType weights_dtype() const { return wdt_; }
  // Bytes the base checkpoint's weights take as stored (bf16 matrices count 2 bytes per value).
  size_t weight_bytes();
  // Of those, the bytes kept in pinned host memory rather than on the GPU (embedding_table): 0 or the embedding's.
  size_t host_weight_bytes() const { return embed_.is_host_mapped() ? embed_.bytes() : 0; }
  // The weight tensor for an HF checkpoint name (nullptr if the model has no such weight).
  Tensor* weight(const std::string& name);
  std::vector<std::string> weight_names() const;

  // Adds LoRA (A, B zero; the caller sets them) to the projections with targets[p]; removes any previous.
  void set_lora(const LoraConfig& c, const std::array<bool, NPROJ>& targets);
  const LoraConfig& lora_config() const { return lora_cfg_; }
  // Module name -> layer projection, for the LoRA modules present.
  std::map<std::string, Linear*> lora_modules();
  void set_full_finetune(bool on);
  bool full_finetune() const { return full_ft_; }

  void set_loss_chunk(int tokens) { loss_chunk_ = tokens > 0 ? tokens : 0; }
  // Activation checkpointing: forward_backward keeps only each layer's input and recomputes the layer's forward
  // right before its backward (same kernels, same dropout masks: gradients are bitwise those without it).
  // Selective: the bottom k layers (0..k-1) are checkpointed and share ONE activation set, the others keep their
  // own. Layer k-1 writes the shared set last in the forward, so its activations are still there when backward
  // reaches it: it is not recomputed, and k checkpointed layers cost k-1 recomputations and save k-1 layers' sets
  // (k = 1 is the plain backward's memory and compute). k = 0: none; k = layers: all (set_gradient_checkpointing).
  // A change of k frees the activations at once (the next step allocates the new layout).
  void set_gradient_checkpointing(bool on) { set_checkpointed_layers(on ? cfg_.layers : 0); }
  bool gradient_checkpointing() const { return ckpt_layers_ > 0; }
  void set_checkpointed_layers(int k);
  int checkpointed_layers() const { return ckpt_layers_; }
  // LoRA dropout masks are drawn from (seed, counter); the counter is exposed so a trainer can checkpoint it
  // or tie it to its global micro-step, making resumed runs draw the same masks.
  uint64_t dropout_counter() const { return dropout_calls_; }
  void set_dropout_counter(uint64_t n) { dropout_calls_ = n; }

  // Logits [rows*T, vocab] for every position (no activations kept for backward), into HOST memory.
  void forward_logits(const Batch& b, float* logits);
  // Loss over shifted labels; gradients (scaled by grad_scale, or 1/tokens if grad_scale <= 0) are
  // ADDED to the trainable parameters' grads, so micro-batches accumulate.
  LossResult forward_backward(const Batch& b, float grad_scale);
  // The same loss with no backward: no activations kept for it, no grads touched, no dropout (validation).
  LossResult eval_loss(const Batch& b);
  void zero_grads();
  const std::vector<ParamRef>& trainable();

  // Generation: cache for B rows of S slots; decode Tq tokens per row at slot `off`, writing their keys
  // and values, and return the logits of each row's last token in logits [B, vocab] (host memory) and/or, when
  // `argmax` is given, each row's greedy token (first maximum of those logits, computed on the device, so only
  // B ints come back; logits may then be null). The cache's valid flags must be current on the device
  // (KVCache::sync_valid) before the call.
  // Single-token steps (Tq == 1) are recorded once and replayed where the backend can record (CUDA graphs: one
  // launch per step instead of ~40 per layer); the recording runs the same kernels, so results are the same.
  KVCache make_cache(int B, int S);
  void decode(KVCache& cache, const int32_t* ids, const int32_t* pos, int Tq, int off, float* logits,
              int32_t* argmax = nullptr);

  // W + scale * B @ A for a LoRA module, into out [out, in] (host memory).
  void merged_weight(const std::string& module, float* out);

  // Random weights instead of a checkpoint (benchmarks at HF sizes): projections and embeddings N(0, std^2) from a
  // counter-based hash of (seed, tensor index, element), rounded to bf16 for bf16 weights; norms 1, biases 0.
  // Made on the model's device.
  void randomize(uint64_t seed, float std);

 private:
  // What a LoRA projection keeps for backward: x A^T, and with dropout only the seed of its mask. The mask and
  // the dropped input ([N, in] each, as much as all the layer's other activations together) are drawn again in
  // backward from that seed (counter-based RNG: bitwise the same) instead of being kept for every layer.
  struct LinSave {
    Tensor xa;               // x A^T [N, r]
    uint64_t drop_seed = 0;  // the dropout mask's seed (dropout on)
  };
  // (The norms' outputs h1 and h2 are not here: Acts holds one of each for all layers.)
  struct LayerActs {
    Tensor rstd1, q, k, v, q_pre, k_pre, rstd_q, rstd_k, att, lse, res2, rstd2, g, u;
    std::array<LinSave, NPROJ> lin;
  };
  // What the activations hold. kInfer: one layer's set and one residual, reused in place. kTrain: every layer's
  // input (res), one set shared by the `ckpt` checkpointed layers (refilled in backward by recomputing them) and
  // one set of its own for each layer above them.
  enum class Keep { kInfer, kTrain };
  struct Acts {
    int N = 0;
    Keep keep = Keep::kInfer;
    int ckpt = 0;             // kTrain: checkpointed layers (the bottom ones)
    std::vector<Tensor> res;  // residual stream entering each layer (+ the final one); one buffer for kInfer
    std::vector<LayerActs> layer;
    // ckpt > 0: the dropout counter as each layer's forward began, so its recomputation draws the same masks.
    std::vector<uint64_t> dropout_at;
    // The activation set layer l writes (kTrain): the shared set 0 for a checkpointed layer, else its own.
    int set_of(int l) const { return l < ckpt ? 0 : l - ckpt + (ckpt > 0 ? 1 : 0); }
    Tensor hF, rstdF, tmp, rope;  // rope: cos/sin table [N, head_dim] of this batch's positions
    // The input norms' outputs, q/k/v's input (h1) and gate/up's (h2) [N, hidden]: one buffer each for all layers,
    // made again in backward from the layer's saved input and res2 and their row statistics (renormed: bitwise the
    // forward's, by the same kernel). Two elementwise passes instead of keeping 2 x hidden per layer: an eighth of a
    // Qwen2 layer's activations. bf16 with bf16_acts_ (GroupIn).
    Tensor h1, h2;
    // The layer whose norms h1 and h2 hold (training; -1: none), so backward skips the passes where the forward or a
    // recomputation of that layer left them.
    int normed_layer = -1;
    // swiglu(g, u), down_proj's input [N, inter]: one buffer for all layers, made again from g and u in backward
    // (an elementwise pass instead of keeping [N, inter] per layer: a quarter of a Qwen2 layer's activations). bf16
    // with bf16_acts_, like h1 and h2.
    Tensor act;
    // Training with bf16 activations: the set every layer runs in (forward, recomputation and backward): the products
    // write q, k, v, g and u and attention its output straight into the saved sets in bf16, so it holds only q (fp32,
    // attention's input), res2 and the row statistics. Empty otherwise (layers run in their own sets).
    LayerActs work;
    bool runs_in_work() const { return !work.res2.empty(); }
  };

  // Backward and loss-head work buffers, kept across steps so a steady-state step does not allocate: fresh
  // engine memory is zero-filled, which cost as much as a kernel on the ~80 MB logits chunk. Grow-only, flat.
  struct Scratch {
    // The work buffers of three phases that are never live at once, carved from one allocation sized for the largest
    // (HeadBuffers, dact, AttnGrads): a third of a step's work buffers at the bench shapes.
    Tensor phases;
    Tensor dres, dres16, dh, drop;
    std::array<Tensor, NPROJ> dxa;  // LoRA dy B per projection: the projections of a group run side by side
    // LoRA dropout's dropped input per projection ([N, in]), drawn in forward, and again with its mask in backward
    // (the CPU only: fused_lora_ backends draw masks inside their LoRA kernels).
    std::array<Tensor, NPROJ> drop_mask, drop_x;
    Tensor x16;  // bf16 mode on a GPU: a projection group's input rounded once (linears_fwd)
    // bf16 activations: one projection's dy rounded to bf16, and a group's LoRA x A^T and B rounded (linears_bwd_bf16)
    Tensor dy16, lora16;
    // A decoding step's stacked product (q, k, v or gate, up side by side in each row) and LoRA x A^T (layer_decode)
    Tensor stacked, decode_xa;
  };

  // The loss head's buffers (Scratch::phases): a chunk's logits and rows of the final norm's output, and in backward
  // their gradient and the final norm's output gradient for all N rows.
  struct HeadBuffers {
    float *logits = nullptr, *hc = nullptr, *dhc = nullptr, *dhF = nullptr;
  };
  // Attention backward's (Scratch::phases): the gradients of its output, q, k, v (and q, k before an fp32 qk-norm), and
  // a float per row and head. They live from o_proj's backward to q/k/v's, when the MLP's dact is dead.
  struct AttnGrads {
    float *datt = nullptr, *dq = nullptr, *dk = nullptr, *dv = nullptr, *dq_pre = nullptr, *dk_pre = nullptr;
    float* per_head = nullptr;
  };
  // Consecutive pieces of one flat buffer, each on a 256-byte boundary; with no base it only counts (sizing).
  struct Carver {
    float* base = nullptr;
    int64_t used = 0;
    float* take(int64_t n);
  };
  HeadBuffers carve_head(Carver& k, int chunk, int N, bool backward) const;
  AttnGrads carve_attn_grads(Carver& k, int N) const;
  // Scratch::phases grown for the loss head of N rows in chunks of `chunk` (and with `backward`, for backward's dact and
  // AttnGrads too); its base.
  float* phases(int chunk, int N, bool backward);
  Tensor make(std::vector<int64_t> shape, DType dt = DType::F32) const { return Tensor(std::move(shape), dt, dev_); }
  // The embedding table: on a GPU, for an untied model, in pinned host memory (see model.cc).
  Tensor embedding_table();
  // Allocates a group's stacked weights and points its projections' w at their rows.
  Tensor stacked(Layer& L, std::initializer_list<Proj> group);
  void check_ids(const int32_t* ids, int64_t n) const;
  // out_host[b] = first maximum of logits [B, vocab] row b (device memory), via the backend's argmax_rows.
  void greedy_tokens(const float* logits, int B, int32_t* out_host);
  // Activations for N tokens in the layout of `keep` (and, training, of ckpt_layers_).
  void ensure_acts(int N, Keep keep);
  // The set a layer writing activation set `set` runs in: acts_.work when saved sets are bf16, else that set.
  LayerActs& run_set(int set);
  // After training layer l ran: its activations into its saved set (with bf16 sets: the fp32 ones trade places; the
  // bf16 copies were written there by layer_forward).
  void keep_set(int l);
  // Before layer l's backward: the set it reads, acts_.work with the saved fp32 tensors traded in with bf16 sets (the
  // bf16 ones stay in the saved set and are read there).
  LayerActs& backward_set(int l);
  void transfer(LayerActs& from, LayerActs& to);
  // Rows of logits per loss-head chunk for n_rows target rows (evened out, at most loss_chunk_ if set).
  int loss_chunk_rows(int n_rows) const;
  // Rows (flat positions) whose next label is a target, and those targets (shifted causal-LM labels).
  void collect_targets(const Batch& b, std::vector<int32_t>& rows, std::vector<int32_t>& targets) const;
  // Where a forward writes its keys and values (generation): the cache and the slot of its first token; off_dev,
  // when given, holds that slot in device memory for the kernels to read (a recorded step replays at the next slot).
  struct CacheAt {
    KVCache* cache = nullptr;
    int off = 0;
    const int32_t* off_dev = nullptr;
  };
  // Integer arguments are device pointers (DeviceInts), checked on the host beforehand.
  void forward_core(const int32_t* ids, const int32_t* pos, int B, int Tq, const int32_t* key_valid,
                    const int32_t* seg, const CacheAt& at, bool train);
  // RMSNorm of x [N, hidden] into out (fp32 or bf16, by its dtype) and its row statistics.
  void normed(const float* x, const Tensor& w, int N, Tensor& out, Tensor& rstd);
  // sum = x + y (the residual stream), then its RMSNorm as normed(), in one backend call.
  void added_normed(const float* x, const float* y, float* sum, const Tensor& w, int N, Tensor& out, Tensor& rstd,
                    const LoraUps& ups = {});
  // Layer l's norms into acts_.h1 and acts_.h2 for its backward, unless they hold them (Acts::normed_layer).
  void renormed(int l, LayerActs& a, int N);
  // swiglu(a.g, a.u) into acts_.act (fp32 or bf16, by its dtype).
  void swiglu(const LayerActs& a, int N);
  // Decoder layer l from xin into xout (xout may alias xin; nullptr: only refill `a`, as a recomputation does).
  // chained (inference, one set): acts_.h1 already holds xin's norm, and the closing residual add also makes the next
  // norm (the next layer's into acts_.h1, or the final one into hF): one launch each instead of two.
  void layer_forward(int l, LayerActs& a, const float* xin, float* xout, int B, int Tq, const int32_t* key_valid,
                     const int32_t* seg, const CacheAt& at, bool train, bool chained);
  // Attention's inputs for layer l (q in a.q; k and v, into the cache when there is one); keep: the saved set a training
  // layer's bf16 copies go to.
  void attention_inputs(int l, LayerActs& a, LayerActs* keep, int B, int Tq, const CacheAt& at, bool train);
  // Attention of a.q over layer l's KV cache into a.att (and att16, o_proj's bf16 input, when given).
  void cached_attention(int l, LayerActs& a, int B, int Tq, const CacheAt& at, uint16_t* att16);
  // layer_forward for a decoding step (decoding_step): fewer launches, the same results.
  void layer_decode(int l, LayerActs& a, const float* xin, float* xout, int B, int Tq, const CacheAt& at);
  // decode() for one token per row: from the cache's fixed step buffers, replaying its recording when it has one.
  void decode_step(KVCache& cache, const int32_t* ids, const int32_t* pos, int off, float* logits, int32_t* argmax);
  // A projection of the layer and its output (forward) or output gradient (backward), fp32 in `data`, or in bf16 in
  // `data16` (`data` then null): a training layer's outputs kept only in bf16 (linears_fwd, with bf16 sets), a dy its
  // maker wrote in bf16 (linears_bwd_bf16), or both: the residual gradient and its rounding (linears_bwd_bf16 reads the
  // rounding, linears_bwd on fp32 activations the fp32). Neither, in linears_fwd: no product, only the LoRA x A^T backward reads (a
  // recomputation's down_proj).
  struct ProjIO {
    Proj proj;
    float* data;
    uint16_t* data16 = nullptr;
  };
  // The input of a group of projections: fp32, or in bf16 mode on a GPU (bf16_acts_) the normed inputs and swiglu's
  // output held only as their bf16 rounding, which the products, LoRA and backward all read.
  struct GroupIn {
    const float* x = nullptr;
    const uint16_t* x16 = nullptr;
  };
  static GroupIn group_in(const Tensor& t) {
    return t.dtype() == DType::BF16 ? GroupIn{nullptr, t.bf16()} : GroupIn{t.f32(), nullptr};
  }
  void linears_fwd(Layer& L, LayerActs& a, GroupIn in, std::initializer_list<ProjIO> outs, int N, bool train);
  // The group's input with its bf16 rounding (x16) where the products take one: bf16 weights on a GPU round x once
  // for the group's products (matmul_bf16w would round it for each), unless it came in bf16. The CPU keeps x in fp32.
  GroupIn with_x16(GroupIn in, const Linear& first, int N);
  // A decoding step (inference on a few rows with a KV cache where the backend fuses LoRA: a GPU) runs layer_decode.
  bool decoding_step(int N, bool train, const CacheAt& at) const;
  // A decoding step's product of a group of projections reading `in` over their weights w (stacked for more than one:
  // outputs side by side in y's rows) and LoRA's x A^T for the group; `ups` gets what the product's reader adds.
  void decode_linears(Layer& L, GroupIn in, std::initializer_list<Proj> group, const Tensor& w, float* y, int N,
                      LoraUps& ups);
  void linears_bwd(Layer& L, LayerActs& a, GroupIn in, std::initializer_list<ProjIO> grads, int N, float* dx,
                   bool acc_dx);
  // linears_bwd with bf16 activations (a GPU): each dy rounded to bf16 once for all three of its products.
  void linears_bwd_bf16(Layer& L, LayerActs& a, GroupIn in, std::initializer_list<ProjIO> grads, int N, float* dx,
                        bool acc_dx);
  // dx += the LoRA terms of a group's projections, mask_k (dxa_k A_k), in one pass (fused_lora_).
  void lora_dx_group(Layer& L, LayerActs& a, std::initializer_list<ProjIO> grads, int N, float* dx);
  // C[M,N] = alpha * A op(W) + beta * C for a frozen weight W in either dtype (op(W) = W^T when tw).
  void matmul_w(bool tw, int M, int N, int K, float alpha, const float* A, int lda, const Tensor& W, float beta,
                float* C, int ldc);
  // out[i,:] = table[ids[i],:] for the embedding table in either dtype.
  void embed_rows(const Tensor& table, const int32_t* ids, int N, float* out);
  const Tensor& head() const { return cfg_.tied ? embed_ : lm_head_; }
  Tensor& head_grad() { return cfg_.tied ? g_embed_ : g_lm_head_; }

  ModelConfig cfg_;
  std::unique_ptr<Backend> be_;
  Device dev_;
  DType wdt_ = DType::F32;
  // bf16 mode on a GPU saves the activations backward reads in bf16, as autocast keeps a bf16 linear's input and
  // output (the projections' inputs and outputs, q, k, v and attention's output: all but the residual after
  // attention and the small per-row statistics); each layer still runs in fp32. The CPU keeps fp32 (its bf16 mode is
  // the fp32 engine on rounded weights).
  bool bf16_acts_ = false;
  // The backend draws LoRA dropout's masks inside its LoRA kernels (Backend::fused_lora: a GPU), so no mask or dropped
  // input is stored; the CPU runs dropout and matmul, with buffers per projection.
  bool fused_lora_ = false;
  // With fused LoRA, lora_up writes bias + LoRA and the base product adds onto it (linears_fwd);
  // TUNEFORGE_CUDA_LORA_UP=add runs the product first and lora_up adds onto it (session 13's order, for an A/B run).
  bool lora_up_first_ = false;
  Tensor embed_, norm_, lm_head_, inv_freq_;
  Tensor g_embed_, g_norm_, g_lm_head_;
  std::vector<Layer> layers_;
  LoraConfig lora_cfg_;
  bool full_ft_ = false;
  int loss_chunk_ = 0;
  int ckpt_layers_ = 0;  // checkpointed (bottom) layers, 0..layers
  uint64_t dropout_calls_ = 0;
  std::vector<ParamRef> trainable_;  // what trainable() returns, until set_lora / set_full_finetune
  bool trainable_stale_ = true;
  Acts acts_;
  Scratch sc_;
  // Bumped whenever tensors a forward uses may have moved (activations reallocated, LoRA replaced): a recorded
  // decoding step holds their addresses and is only replayed under the layout it was recorded with.
  uint64_t layout_ = 0;
};

}  // namespace tf
