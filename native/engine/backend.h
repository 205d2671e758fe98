// The kernel interface the model is written against. The model owns no maths of its own beyond calling
// these; a backend (the CPU, and CUDA) implements them on its device's memory. Float tensors are fp32,
// row-major; "N" is a number of token rows. Half tensors are raw uint16_t bits (engine/bf16.h): frozen base
// weights in bf16 or fp16 mode, and in bf16 mode on a GPU the activations kept in bf16; only the methods whose
// names or arguments say so (*_bf16*, *_f16*, *_h, x16, copies) read or write them.
#pragma once
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace tf {

// Shape of one attention call. Queries are [B, Tq, H*hd]; keys/values live in [B, Tk, KV*hd] buffers
// (the activations in training, the KV cache in generation); query t of row b sits at key index
// q_off + t. Key s is visible to it when s <= q_off + t, key_valid[b, s] != 0 and (with segment ids,
// for packed sequences) seg[b, s] == seg[b, q_off + t].
struct AttnDims {
  int B, Tq, Tk, q_off;
  int H, KV, hd;
  // A decoding step's slot as one int in device memory, read by the kernel when it runs (a recorded step replays
  // at the next slot with the same arguments). When set, it is the query offset and q_off only sizes the checks.
  const int32_t* q_off_dev = nullptr;
};

struct AdamWHyper {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based step count, for the bias corrections
};

// bf16 copies Backend::qk_norm_rope writes as it goes (a layer's saved set, in training with bf16 activations); any
// may be null: q and k as they came in (q_pre, k_pre: with norm weights only) and as they went out.
struct QkCopies {
  uint16_t* q_pre = nullptr;
  uint16_t* k_pre = nullptr;
  uint16_t* q = nullptr;
  uint16_t* k = nullptr;
  // The inputs are only in bf16, in q_pre and k_pre (read, not written; q_in, k_in unused): a training layer's q and k
  // products write them so. q_pre may be q (and k_pre k) without norm weights: rotated in place.
  bool pre_is_input = false;
};

// One LoRA module's share of Backend::lora_dx: its A [r, in], dy B [N, r] and dropout seed.
struct LoraTerm {
  const float* A;
  const float* dxa;
  uint64_t seed;
};
constexpr int kMaxLoraTerms = 3;  // the most projections reading one input (q, k, v)
// A decoding step's LoRA for one projection, added by the op that reads the projection's output: its x A^T [N, r]
// (from Backend::lora_apply_down), B [out, r] and the projection's bias [out]. xa null: no LoRA, the bias alone (which
// may be null too).
struct LoraUp {
  const float* xa = nullptr;
  const float* B = nullptr;
  const float* bias = nullptr;
};
// Several narrow_bf16 jobs for one launch (narrow_bf16_many): a projection group's LoRA x A^T and B in backward.
struct NarrowJobs {
  static constexpr int kMax = 8;
  const float* x[kMax] = {};
  uint16_t* y[kMax] = {};
  int64_t n[kMax] = {};
  int count = 0;
  void add(const float* from, uint16_t* to, int64_t values) {
    if (count == kMax) throw std::logic_error("NarrowJobs: more than kMax jobs");
    x[count] = from;
    y[count] = to;
    n[count++] = values;
  }
};

// What a reader of a decoding step's projection outputs adds to each value it reads, y + bias + scale (x A^T) B^T
// (rounded once, the ranks in order): for the reader's projections in order (qkv_to_cache: q, k, v; swiglu_fwd_stacked:
// gate, up; add_rmsnorm: its b). A default one adds nothing.
struct LoraUps {
  LoraUp p[kMaxLoraTerms];
  int r = 0;
  float scale = 0;
};

// A piece of work for Backend::concurrently: a few calls whose outputs no other piece reads or writes.
struct Piece {
  double macs;  // multiply-adds of its largest product
  std::function<void()> run;
};

// Device work recorded once and run again as a whole (a CUDA graph): one launch instead of one per kernel.
class Recording {
 public:
  virtual ~Recording() = default;
  // Runs the recorded work again: the same kernels with the same arguments (pointers included) on the current
  // contents of memory. False, running nothing, when the backend's own work buffers have moved since recording
  // (record again).
  virtual bool replay() = 0;
  virtual size_t launches() const = 0;  // kernels and copies recorded
  // The most of them that depend on one another in a chain: what a replay runs one after another, the rest beside
  // them on other streams' branches (Backend::run_beside).
  virtual size_t depth() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual void set_threads(int threads) = 0;

  // The dtype of the model's frozen base weights (F32, BF16 or F16), told by the Model. In bf16 mode a GPU may round
  // attention's operands to bf16 for its tensor cores (fp32 accumulation); the CPU computes in fp32 either way.
  virtual void set_weights_dtype(DType) {}
  // Backends with more than one attention implementation name them here (CUDA: "gemm", "flash"; the default is
  // chosen by TUNEFORGE_CUDA_ATTENTION), so the kernel self-test can check each; the CPU has one (empty list).
  virtual std::vector<std::string> attention_paths() const { return {}; }
  virtual void set_attention_path(const std::string&) {}
  // The kernels a call of these dimensions takes on the current path (CUDA: "mma", "gemm" or "flash"; a path may hand
  // calls it does not fit to another), named in the kernel check's report; empty where there is one implementation.
  virtual std::string attention_route(const AttnDims&) const { return ""; }

  // Runs independent pieces of work, in any order. The CPU runs the pieces whose products are all too small to be
  // split across its threads side by side, one thread each (a tiny model's products otherwise leave all but one
  // core idle). This default, used by GPUs and by the profiler, runs them in order. Inside a piece only kernels
  // whose results do not depend on the thread count may run (matmul, matmul_bf16w, the elementwise helpers,
  // add_bias, dropout), so results are the same either way.
  virtual void concurrently(const std::vector<Piece>& pieces) {
    for (const Piece& p : pieces) p.run();
  }

  // Runs `side` beside `main` where the device can overlap them: a GPU issues side on a second stream that forks from
  // the current one and joins it again (a recorded step holds them as parallel branches). side may launch only the
  // backend's own kernels, no products (cuBLAS works in one workspace), and neither may touch what the other writes.
  // This default runs side, then main.
  virtual void run_beside(const std::function<void()>& main, const std::function<void()>& side) {
    side();
    main();
  }

  // Records the device work `body` issues without running it. nullptr where the backend cannot record (the CPU,
  // the profiler, TUNEFORGE_CUDA_GRAPHS=0) or where body did something a recording cannot hold (allocated or freed
  // memory, waited for the device): nothing of body's work has then run, and the caller runs body itself.
  virtual std::unique_ptr<Recording> record(const std::function<void()>& body) { return nullptr; }

  // C[M,N] = alpha * op(A) op(B) + beta * C (row-major, lda/ldb/ldc are row strides).
  virtual void matmul(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
                      const float* B, int ldb, float beta, float* C, int ldc) = 0;

  // Products with a frozen bf16 weight W (row-major, row stride ldw), fp32 activations in and out:
  // C[M,N] = alpha * A[M,K] op(W) + beta * C, where op(W) = W^T when tw (W stored [N, K]: the forward x W^T)
  // and W otherwise (W stored [K, N]: the input gradient dy W).
  virtual void matmul_bf16w(bool tw, int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* W,
                            int ldw, float beta, float* C, int ldc) = 0;
  // C[M,N] = alpha * op(A) op(B) + beta * C with both operands in bf16 (fp32 sums), flags and strides as matmul's:
  // bf16 mode on a GPU rounds the input of a layer's projections once for all of them (equal to matmul_bf16w on the
  // rounded activation), and rounds each gradient dy once for the base product and LoRA's two. C is fp32, or with C16
  // given (C then unused) bf16, read and written rounded to nearest even: a training layer's projection outputs that
  // are only kept in bf16.
  virtual void matmul_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const uint16_t* A, int lda,
                           const uint16_t* B, int ldb, float beta, float* C, uint16_t* C16, int ldc) = 0;
  // out[i,:] = float(table[ids[i],:]) for a bf16 table (the embedding in bf16 mode).
  virtual void embedding_fwd_bf16(const uint16_t* table, const int32_t* ids, int N, int C, float* out) = 0;
  // The same three for fp16 base weights (fp16 mode: GPUs without bf16, compute capability < 8.0). A GPU rounds the
  // activation to fp16 for its tensor cores (values past 65504 become inf, as under fp16 autocast).
  virtual void matmul_f16w(bool tw, int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* W,
                           int ldw, float beta, float* C, int ldc) = 0;
  virtual void embedding_fwd_f16(const uint16_t* table, const int32_t* ids, int N, int C, float* out) = 0;
  virtual void widen_f16(const uint16_t* x, float* y, int64_t n) = 0;
  // y[i] = float(x[i]) (merging an adapter into a bf16 weight; activations kept in bf16, back in backward).
  virtual void widen_bf16(const uint16_t* x, float* y, int64_t n) = 0;
  // y[i] = bf16(x[i]), rounded to nearest even (activations kept in bf16 for backward in bf16 mode on a GPU).
  virtual void narrow_bf16(const float* x, uint16_t* y, int64_t n) = 0;
  // Every job's narrow_bf16, in one launch on a GPU.
  virtual void narrow_bf16_many(const NarrowJobs& jobs) = 0;

  // Elementwise helpers.
  virtual void zero(float* x, int64_t n) = 0;
  // zero(xs[i], ns[i]) for every i: the trainable tensors' gradients before a step, in one launch on a GPU (one
  // memset each was 392 launches and 3.9 ms of a Qwen3-0.6B step on an H100). xs and ns are HOST arrays.
  virtual void zero_many(float* const* xs, const int64_t* ns, int count) = 0;
  virtual void copy(float* dst, const float* src, int64_t n) = 0;
  virtual void add(float* y, const float* x, int64_t n) = 0;            // y += x
  virtual void add_out(float* out, const float* a, const float* b, int64_t n) = 0;  // out = a + b (may alias)
  virtual void scale(float* x, float s, int64_t n) = 0;                 // x *= s
  virtual void mul(float* y, const float* x, int64_t n) = 0;            // y *= x
  virtual void add_bias(float* y, const float* bias, int N, int C) = 0;  // y[n,:] += bias
  virtual void bias_grad(float* gb, const float* dy, int N, int C) = 0;  // gb += sum_n dy[n,:]
  virtual double sum_squares(const float* x, int64_t n) = 0;
  // Sum of sum_squares(xs[i], ns[i]) over i = 0..count-1, added in that order (gradient-norm clipping over every
  // trainable tensor). xs and ns are HOST arrays (of device pointers): one device-to-host copy on a GPU instead of
  // a synchronising copy per buffer; bitwise the per-buffer loop on the CPU.
  virtual double sum_squares_many(const float* const* xs, const int64_t* ns, int count) = 0;
  // out[i] = index of the first maximum of row i of x [N, V] (std::max_element / torch.argmax: the lowest index
  // wins ties), out is device memory: greedy decoding reads N ints back instead of N*V logits.
  virtual void argmax_rows(const float* x, int N, int V, int32_t* out) = 0;

  // out[i,:] = table[ids[i],:]  /  table_grad[ids[i],:] += d[i,:]  (also used to gather/scatter rows).
  virtual void embedding_fwd(const float* table, const int32_t* ids, int N, int C, float* out) = 0;
  virtual void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d) = 0;
  // embedding_bwd where the ids are distinct (the loss head's rows with a target): every element has one writer, so a
  // GPU adds them all at once (embedding_bwd's thread per column walks the rows in order, for repeats: 4 blocks at
  // hidden 1024, 2.8 ms of a Qwen3-0.6B step on an H100).
  virtual void scatter_add_rows(float* dst, const int32_t* rows, int N, int C, const float* src) = 0;

  // RMSNorm over rows of C: out = x * rstd * w; rstd saved for backward.
  virtual void rmsnorm_fwd(const float* x, const float* w, int N, int C, float eps, float* out,
                           float* rstd) = 0;
  // The same with out rounded to bf16 (nearest even): bf16 mode on a GPU holds a projection group's input only in
  // bf16, which its products, LoRA and backward all read.
  virtual void rmsnorm_fwd_bf16(const float* x, const float* w, int N, int C, float eps, uint16_t* out,
                                float* rstd) = 0;
  // sum = a + b (the residual stream after a sublayer; may alias a), then rmsnorm_fwd of sum into out (fp32), or into
  // out16 rounded to bf16 (out null): the residual add and the next norm in one pass. A decoding step's b is its o or
  // down product, to which `ups` adds that projection's bias and LoRA as it is read.
  virtual void add_rmsnorm(const float* a, const float* b, const float* w, int N, int C, float eps, float* sum,
                           float* out, uint16_t* out16, float* rstd, const LoraUps& ups) = 0;
  // dx (+)= ...; dw += ... when dw != nullptr; dx16 (when given): dx's final values rounded to bf16 as well (the
  // residual gradient, which bf16 mode's next projection backward reads as its dy).
  virtual void rmsnorm_bwd(const float* x, const float* w, const float* rstd, const float* dy, int N,
                           int C, float* dx, bool accumulate_dx, float* dw, uint16_t* dx16) = 0;

  // Rotary table for positions pos[N]: cs[i, :hd/2] = cos(pos[i] * inv_freq), cs[i, hd/2:] = sin(...). Built
  // once per forward and shared by every layer's q and k rotations and their gradients.
  virtual void rope_table(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs) = 0;
  // Rotary embedding in place on x [N, heads, hd] (halves layout); backward is the inverse rotation.
  virtual void rope(float* x, const float* cs, int N, int heads, int hd, bool inverse) = 0;

  // Attention's q [N, H, hd] and k [N, KV, hd] made ready in one call: with norm weights (qk-norm: Qwen3) each head's
  // row is RMS-normed (as rmsnorm_fwd, its rstd saved), then rotated (rope). Without them q_in, k_in may be q, k.
  // `copies` get the bf16 roundings of the inputs and outputs it names (or hold the inputs). q or k may be null where
  // its bf16 copy is all that is wanted.
  virtual void qk_norm_rope(const float* q_in, const float* k_in, const float* q_w, const float* k_w, const float* cs,
                            int N, int H, int KV, int hd, float eps, float* q, float* k, float* rstd_q, float* rstd_k,
                            const QkCopies& copies) = 0;

  // Its backward in one call: dq, dk rotated back in place; with norm weights then through each head row's norm into
  // dq_pre, dk_pre (as rmsnorm_bwd, from the inputs q_pre, k_pre: fp32, or bf16 when q_pre16/k_pre16 are given), the
  // weights' gradients added into dq_w, dk_w when given (full fine-tuning; dq, dk then also hold the rotated values).
  // dq16, dk16 (bf16 activations on a GPU, never with dq_w, dk_w): the results (dq_pre, dk_pre with norm weights, the
  // rotated dq, dk without) go there rounded to bf16 instead, for the q and k products' backward; they may be
  // q_pre16, k_pre16.
  virtual void qk_norm_rope_bwd(float* dq, float* dk, const float* q_pre, const float* k_pre, const uint16_t* q_pre16,
                                const uint16_t* k_pre16, const float* q_w, const float* k_w, const float* rstd_q,
                                const float* rstd_k, const float* cs, int N, int H, int KV, int hd, float* dq_pre,
                                float* dk_pre, float* dq_w, float* dk_w, uint16_t* dq16, uint16_t* dk16) = 0;

  // out16, when given, gets the output rounded to bf16 instead of out (bf16 activations on a GPU: o_proj's input,
  // and the saved copy, straight from attention).
  virtual void attention_fwd(const AttnDims& d, const float* q, const float* k, const float* v,
                             const int32_t* key_valid, const int32_t* seg, float* out, float* lse,
                             uint16_t* out16) = 0;
  // Training only (Tq == Tk, q_off == 0). dq/dk/dv are overwritten; scratch holds B*Tq*H floats.
  virtual void attention_bwd(const AttnDims& d, const float* q, const float* k, const float* v,
                             const int32_t* key_valid, const int32_t* seg, const float* out,
                             const float* lse, const float* dout, float* dq, float* dk, float* dv,
                             float* scratch) = 0;

  // The same from q, k, v and out saved in bf16 (bf16 activations on a GPU, whose GEMM path rounds them to bf16
  // anyway): the backward reads them as they are instead of from widened copies.
  virtual void attention_bwd_h(const AttnDims& d, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                               const int32_t* key_valid, const int32_t* seg, const uint16_t* out, const float* lse,
                               const float* dout, float* dq, float* dk, float* dv, float* scratch) = 0;

  // Elementwise: an output may be one of the inputs (each element is read before it is written).
  virtual void swiglu_fwd(const float* g, const float* u, int64_t n, float* out) = 0;
  // out rounded to bf16; g16 and u16, when given, get g and u rounded too (a layer's saved copies, as they are read)
  virtual void swiglu_fwd_bf16(const float* g, const float* u, int64_t n, uint16_t* out, uint16_t* g16,
                               uint16_t* u16) = 0;
  // Both from g and u saved in bf16 (backward in bf16 mode on a GPU reads them as they are: no widened copy). The
  // backward's dg and du are rounded to bf16 (gate's and up's dy, which their three products read in bf16); they may
  // be g and u.
  virtual void swiglu_fwd_h(const uint16_t* g, const uint16_t* u, int64_t n, uint16_t* out) = 0;
  // swiglu of a decoding step's stacked gate/up product gu [N, 2 inter] (g in columns [0, inter), u after them), with
  // their biases and LoRA (`ups`), into out [N, inter]: fp32, or bf16 into out16 (out null).
  virtual void swiglu_fwd_stacked(const float* gu, int N, int inter, float* out, uint16_t* out16,
                                  const LoraUps& ups) = 0;
  virtual void swiglu_bwd_h(const uint16_t* g, const uint16_t* u, const float* dout, int64_t n, uint16_t* dg,
                            uint16_t* du) = 0;
  virtual void swiglu_bwd(const float* g, const float* u, const float* dout, int64_t n, float* dg,
                          float* du) = 0;

  // Cross-entropy over rows of logits [N, V] in place: logits become d(loss*grad_scale)/dlogits.
  // Returns the summed loss (double). Rows whose target is < 0 get zero gradient and no loss.
  virtual double cross_entropy(float* logits, const int32_t* targets, int N, int V,
                               float grad_scale) = 0;

  virtual void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h) = 0;
  // adamw on count tensors in one call: tensor i is ps[i], gs[i], ms[i], vs[i] of ns[i] elements. The pointer and
  // size arrays are HOST arrays (of device pointers). Bitwise the same as calling adamw on each tensor; one call
  // per optimizer step instead of one per trainable tensor (each of which cost more than its work on small models).
  virtual void adamw_many(float* const* ps, const float* const* gs, float* const* ms, float* const* vs,
                          const int64_t* ns, int count, const AdamWHyper& h) = 0;

  // LoRA dropout: mask[i] = 0 or 1/(1-p) from a counter-based RNG (seed, offset), x_out = x * mask. mask may be
  // null (the forward: backward draws the same mask again from the seed when it needs it).
  virtual void dropout(const float* x, float* mask, float* x_out, int64_t n, float p, uint64_t seed) = 0;

  // LoRA's down-projection and its gradients with dropout fused: the mask of input element (n, i) is dropout's
  // element n * in + i for `seed` (p = 0: no dropout), drawn where it is used, so no mask or dropped input is stored.
  // A GPU's Model uses these (fused_lora()); the CPU keeps dropout + matmul, and its versions here, made of those same
  // kernels, are the kernel check's reference. x is [N, in] fp32, or bf16 bits when x16 is given (x is then unused).
  // xa [N, r] = (x * mask) A^T for A [r, in].
  virtual void lora_down(const float* x, const uint16_t* x16, int N, int in, const float* A, int r, float p,
                         uint64_t seed, float* xa) = 0;
  // gA [r, in] += dxa^T (x * mask) for dxa [N, r].
  virtual void lora_down_grad(const float* x, const uint16_t* x16, int N, int in, const float* dxa, int r, float p,
                              uint64_t seed, float* gA) = 0;
  // dx [N, in] += sum over the count (<= kMaxLoraTerms) terms of mask_k * (dxa_k A_k): the input gradient of the
  // LoRA modules of projections that read the same input, in one pass over dx.
  virtual void lora_dx(float* dx, int N, int in, int r, float p, const LoraTerm* terms, int count) = 0;
  // A decoding step's LoRA down-projections: xa_k = x A_k^T [N, r] (at xa + k N r) for the count (<= kMaxLoraTerms)
  // modules of projections that read x (fp32, or bf16 bits when x16 is given), no dropout. One launch on a GPU; the
  // reader of the products adds the rest (LoraUps).
  virtual void lora_apply_down(const float* x, const uint16_t* x16, int N, int in, int r, const float* const* A,
                               int count, float* xa) = 0;
  virtual bool fused_lora() const { return false; }
  // y [N, out] (fp32, or bf16 bits when y16 is given) += bias (when given) + scale xa B^T for xa [N, r], B [out, r]
  // (r = 0: the bias alone), rounded once: LoRA's up-projection and the projection's bias in one pass over y. Without
  // accumulate, y = bias + scale xa B^T (y is not read): the base product then adds onto it.
  virtual void lora_up(float* y, uint16_t* y16, int N, int out, const float* xa, const float* B, int r, float scale,
                       const float* bias, bool accumulate) = 0;

  // A layer's keys and values into its KV cache of Tk slots per row, in one call: dk[b, off + t, :] = k[b*Tq + t, :],
  // and the same for v. With off_dev (one int in device memory, see AttnDims::q_off_dev) the slot is read from it
  // when the call runs; off then only sizes the checks.
  virtual void cache_write(float* dk, float* dv, const float* k, const float* v, int B, int Tq, int Tk, int off,
                           const int32_t* off_dev, int C) = 0;

  // A KV cache held in bf16 (bf16 mode on a GPU, whose attention products take K and V in bf16 anyway): the write
  // rounds to nearest even, attention widens K and V exactly as it reads them (same contracts as the fp32 forms).
  virtual void cache_write_bf16(uint16_t* dk, uint16_t* dv, const float* k, const float* v, int B, int Tq, int Tk,
                                int off, const int32_t* off_dev, int C) = 0;
  // A decoding layer's attention inputs from one stacked q/k/v product qkv [B*Tq, ld] (q in columns [0, H hd), then k
  // [KV hd], then v), with their biases and LoRA (`ups`): q and k as qk_norm_rope makes them (norm weights null:
  // rotation only), q into q [B*Tq, H hd] for attention, k and v into the cache at the step's slots as cache_write
  // puts them (kc16, vc16 instead of kc, vc: a bf16 cache, as cache_write_bf16). On a GPU one pass for what LoRA's
  // up-projections, qk_norm_rope and cache_write do in several.
  virtual void qkv_to_cache(const float* qkv, int ld, const float* q_w, const float* k_w, const float* cs, int B,
                            int Tq, int H, int KV, int hd, float eps, float* q, float* kc, float* vc, uint16_t* kc16,
                            uint16_t* vc16, int Tk, int off, const int32_t* off_dev, const LoraUps& ups) = 0;
  virtual void attention_fwd_kv16(const AttnDims& d, const float* q, const uint16_t* k, const uint16_t* v,
                                  const int32_t* key_valid, const int32_t* seg, float* out, float* lse,
                                  uint16_t* out16) = 0;
};

std::unique_ptr<Backend> make_cpu_backend();
// fp32 CUDA backend on the current device (native/cuda/); every pointer it is given must be device memory,
// integer arrays (ids, targets, masks, positions) included. Defined only in builds with TUNEFORGE_CUDA.
std::unique_ptr<Backend> make_cuda_backend();

}  // namespace tf
