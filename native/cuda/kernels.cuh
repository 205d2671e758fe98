// Launchers of the CUDA kernels (one .cu file per family). Semantics are those of tf::Backend in
// engine/backend.h, on device pointers; the CPU kernels in native/cpu/ are the reference they are tested against.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

#include "engine/backend.h"

namespace tf::cuda {

// elementwise.cu
void add(float* y, const float* x, int64_t n, cudaStream_t s);
void add_out(float* out, const float* a, const float* b, int64_t n, cudaStream_t s);
void scale(float* x, float a, int64_t n, cudaStream_t s);
void mul(float* y, const float* x, int64_t n, cudaStream_t s);
void add_bias(float* y, const float* bias, int N, int C, cudaStream_t s);
void dropout(const float* x, float* mask, float* x_out, int64_t n, float p, uint64_t seed, cudaStream_t s);
// dst[b, o + t, :] = src[b*Tq + t, :] into a KV cache of Tk slots per row (float, or bf16 bits rounded to nearest
// even), at slot o = off, or read on the device from off_dev when given. Instantiated for float and uint16_t.
template <typename T>
void cache_write(T* dk, T* dv, const float* k, const float* v, int B, int Tq, int Tk, int off, const int32_t* off_dev,
                 int C, cudaStream_t s);
// bf16 as raw bits (engine/bf16.h): y = float(x); out [rows, cols] (packed) = x [rows, cols] (row stride ld)
// rounded to nearest even, the activation operand of the bf16 tensor-core products.
void widen_bf16(const uint16_t* x, float* y, int64_t n, cudaStream_t s);
void narrow_bf16(const float* x, int rows, int cols, int ld, uint16_t* out, cudaStream_t s);
void narrow_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t s);  // a contiguous x of n values
void narrow_bf16_many(const NarrowJobs& jobs, cudaStream_t s);
// fp16 (fp16 mode's weights and the activation operand of their products)
void widen_f16(const uint16_t* x, float* y, int64_t n, cudaStream_t s);
void narrow_f16(const float* x, int rows, int cols, int ld, uint16_t* out, cudaStream_t s);

// reduce.cu. sum_squares needs a device scratch of kSumSquaresBlocks doubles.
constexpr int kSumSquaresBlocks = 256;
void bias_grad(float* gb, const float* dy, int N, int C, cudaStream_t s);
double sum_squares(const float* x, int64_t n, double* scratch, cudaStream_t s);
// Many buffers at once, one copy back: scratch of count items, count * kSumSquaresBlocks partials, count sums.
struct SumSquaresItem {
  const float* x;
  int64_t n;
};
// Backend::zero_many: `items` is the table of buffers in device memory; `longest` the most elements of one.
struct ZeroItem {
  float* x;
  int64_t n;
  bool operator==(const ZeroItem& o) const { return x == o.x && n == o.n; }
};
void zero_many(const ZeroItem* items, int count, int64_t longest, cudaStream_t s);
constexpr int kMaxGridY = 65535;
double sum_squares_many(const float* const* xs, const int64_t* ns, int count, SumSquaresItem* items,
                        double* partial, double* sums, cudaStream_t s);
// out[i] (device) = first index of the maximum of row i of x [N, V] (greedy decoding).
void argmax_rows(const float* x, int N, int V, int32_t* out, cudaStream_t s);

// embedding.cu (the bf16 form gathers from a table of raw bf16 bits and widens to fp32)
void embedding_fwd(const float* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s);
void embedding_fwd_bf16(const uint16_t* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s);
void embedding_fwd_f16(const uint16_t* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s);
void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d, cudaStream_t s);
void scatter_add_rows(float* dst, const int32_t* rows, int N, int C, const float* src, cudaStream_t s);

// rmsnorm.cu (the forward's output fp32, or bf16 bits rounded to nearest even: T = uint16_t)
template <typename T>
void rmsnorm_fwd(const float* x, const float* w, int N, int C, float eps, T* out, float* rstd, cudaStream_t s);
template <typename T>
void add_rmsnorm(const float* a, const float* b, const float* w, int N, int C, float eps, float* sum, T* out,
                 float* rstd, const LoraUps& ups, cudaStream_t s);
void rmsnorm_bwd(const float* x, const float* w, const float* rstd, const float* dy, int N, int C, float* dx,
                 bool accumulate_dx, float* dw, uint16_t* dx16, cudaStream_t s);

// rope.cu
void rope_table(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs, cudaStream_t s);
void rope(float* x, const float* cs, int N, int heads, int hd, bool inverse, cudaStream_t s);
// Backend::qk_norm_rope_bwd: one launch (plus the norm weights' column sums when asked for them).
void qk_norm_rope_bwd(float* dq, float* dk, const float* q_pre, const float* k_pre, const uint16_t* q_pre16,
                      const uint16_t* k_pre16, const float* q_w, const float* k_w, const float* rstd_q,
                      const float* rstd_k, const float* cs, int N, int H, int KV, int hd, float* dq_pre, float* dk_pre,
                      float* dq_w, float* dk_w, uint16_t* dq16, uint16_t* dk16, cudaStream_t s);
// rmsnorm.cu's dw += sum over rows of dy * x * rstd (one thread per column, rows in order)
void rmsnorm_weight_grad(const float* x, const float* rstd, const float* dy, int N, int C, float* dw, cudaStream_t s);
// Backend::qk_norm_rope in one launch: a warp per head row (hd even, at most kMaxRopeHeadDim).
constexpr int kMaxRopeHeadDim = 256;
void qk_norm_rope(const float* q_in, const float* k_in, const float* q_w, const float* k_w, const float* cs, int N,
                  int H, int KV, int hd, float eps, float* q, float* k, float* rstd_q, float* rstd_k,
                  const QkCopies& copies, cudaStream_t s);
// Backend::qkv_to_cache in one launch, into a cache of C: float, or bf16 bits (uint16_t) rounded to nearest even.
template <typename C>
void qkv_to_cache(const float* qkv, int ld, const float* q_w, const float* k_w, const float* cs, int B, int Tq, int H,
                  int KV, int hd, float eps, float* q, C* kc, C* vc, int Tk, int off, const int32_t* off_dev,
                  const LoraUps& ups, cudaStream_t s);

// attention.cu (the forward also reads K and V from a bf16 KV cache: KV = uint16_t, and writes its output in bf16:
// TO = uint16_t)
template <typename KV, typename TO>
void attention_fwd(const AttnDims& d, const float* q, const KV* k, const KV* v, const int32_t* key_valid,
                   const int32_t* seg, TO* out, float* lse, cudaStream_t s);
void attention_bwd(const AttnDims& d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                   const int32_t* seg, const float* out, const float* lse, const float* dout, float* dq, float* dk,
                   float* dv, float* scratch, cudaStream_t s);
// Throws std::invalid_argument naming the dims when a call cannot be valid (shared by both attention paths).
void check_attention_dims(const AttnDims& d, bool backward);
// D[i] = dot(dout[i, :hd], out[i, :hd]) for rows of (token, head): the backward's rowsum(dO * O).
template <typename T>
void attention_rowdot(const T* out, const float* dout, int64_t rows, int hd, float* D, cudaStream_t s);

// attention_gemm.cu: the same contract on cuBLAS batched GEMMs over chunks of query rows (tensor cores in bf16
// mode: bf16 operands, fp32 accumulation). `work` is device memory of attention_gemm_bytes(d, bf16, backward).
size_t attention_gemm_bytes(const AttnDims& d, bool bf16, bool backward);
template <typename KV, typename TO>
void attention_gemm_fwd(const AttnDims& d, const float* q, const KV* k, const KV* v, const int32_t* key_valid,
                        const int32_t* seg, TO* out, float* lse, cublasHandle_t blas, bool bf16, void* work,
                        cudaStream_t s);
// The backward also reads q, k, v and out saved in bf16 (T = uint16_t: bf16 activations).
template <typename T>
void attention_gemm_bwd(const AttnDims& d, const T* q, const T* k, const T* v, const int32_t* key_valid,
                        const int32_t* seg, const T* out, const float* lse, const float* dout, float* dq, float* dk,
                        float* dv, float* scratch, cublasHandle_t blas, bool bf16, void* work, cudaStream_t s);

// attention_mma.cu: the same contract in flash style on the tensor cores (bf16 mode, compute capability 8.0 and up;
// the caller checks): Q, K, V, dO fp32 or bf16 (rounded to bf16 as they are loaded), out fp32 or bf16. Only for calls
// attention_mma_fits: a head dimension it is built for (16, 32, 64, 80, 96, 128), no slot read on the device, and
// every tensor starting on a 32-bit word.
bool attention_mma_fits(const AttnDims& d, std::initializer_list<const void*> tensors);
// Whether this build's code for the mma kernels (on the current device) is compute 8.0's or later.
bool attention_mma_compiled();
template <typename TQ, typename KV, typename TO>
void attention_mma_fwd(const AttnDims& d, const TQ* q, const KV* k, const KV* v, const int32_t* key_valid,
                       const int32_t* seg, TO* out, float* lse, cudaStream_t s);
// `scratch` holds B*T*H floats (D), as attention_bwd's; `work` is device memory of attention_mma_bytes(d, true) (dO in
// bf16).
size_t attention_mma_bytes(const AttnDims& d, bool backward);
template <typename T>
void attention_mma_bwd(const AttnDims& d, const T* q, const T* k, const T* v, const int32_t* key_valid,
                       const int32_t* seg, const T* out, const float* lse, const float* dout, float* dq, float* dk,
                       float* dv, float* scratch, void* work, cudaStream_t s);

// attention_decode.cu: the forward for decoding steps (few query rows per KV head against a long cache), the slot
// possibly read on the device, in chunks of keys with a merge, in one launch. Only for calls attention_decode_fits: at
// most kDecodeMaxRows query rows per KV head (G x Tq) and head dims up to kDecodeMaxHeadDim. `work` is device memory of
// attention_decode_bytes(d); `arrived` B x KV counters that are 0 before the launch (and are again after it).
constexpr int kDecodeMaxRows = 32;
constexpr int kDecodeMaxHeadDim = 256;
bool attention_decode_fits(const AttnDims& d);
size_t attention_decode_bytes(const AttnDims& d);
template <typename KV, typename TO>
void attention_decode(const AttnDims& d, const float* q, const KV* k, const KV* v, const int32_t* key_valid,
                      const int32_t* seg, TO* out, float* lse, void* work, unsigned* arrived, cudaStream_t s);

// swiglu.cu: g and u fp32 or bf16 bits (TI), the forward's output fp32 or bf16 bits (TO)
// (g16, u16: optional bf16 copies of fp32 g and u, written as they are read)
template <typename TI, typename TO>
void swiglu_fwd(const TI* g, const TI* u, int64_t n, TO* out, cudaStream_t s, uint16_t* g16 = nullptr,
                uint16_t* u16 = nullptr);
// Backend::swiglu_fwd_stacked: g and u side by side in the rows of gu [N, 2 inter]; out fp32 or bf16 bits (TO)
template <typename TO>
void swiglu_fwd_stacked(const float* gu, int N, int inter, TO* out, const LoraUps& ups, cudaStream_t s);
// (backward: dg, du fp32 from fp32 g, u; bf16 from bf16 ones)
template <typename T>
void swiglu_bwd(const T* g, const T* u, const float* dout, int64_t n, T* dg, T* du, cudaStream_t s);

// cross_entropy.cu: per-row losses go to row_loss (N doubles, device); the sum is taken on the host in row order.
double cross_entropy(float* logits, const int32_t* targets, int N, int V, float grad_scale, double* row_loss,
                     cudaStream_t s);

// skinny_gemm.cu: C[M, N] = alpha A[M, K] W[N, K]^T + beta C with bf16 A and W and fp32 C, for M <= kSkinnyRows (a
// decoding step's products) where skinny_gemm_fits: K a multiple of 32, rows of A and W 16-byte aligned. `work` holds
// skinny_gemm_work_floats floats and `arrived` skinny_gemm_counters zeroed counters (left zeroed), both none for
// most shapes; one product at a time may use them.
constexpr int kSkinnyRows = 64;
bool skinny_gemm_fits(int M, int N, int K, const uint16_t* A, int lda, const uint16_t* W, int ldw);
size_t skinny_gemm_work_floats(int M, int N, int K);
size_t skinny_gemm_counters(int N, int K);
void skinny_gemm(const uint16_t* A, int lda, const uint16_t* W, int ldw, float* C, int ldc, int M, int N, int K,
                 float alpha, float beta, float* work, unsigned* arrived, cudaStream_t s);

// lora.cu: LoRA's down-projection and its gradients with the dropout mask drawn in place (Backend::lora_down,
// lora_down_grad, lora_dx). x is float or bf16 bits (uint16_t). `work` holds lora_work_floats(N, in, r) floats of
// split partial sums.
size_t lora_work_floats(int N, int in, int r);
template <typename T>
void lora_down(const T* x, int N, int in, const float* A, int r, float p, uint64_t seed, float* xa, float* work,
               cudaStream_t s);
template <typename T>
void lora_down_grad(const T* x, int N, int in, const float* dxa, int r, float p, uint64_t seed, float* gA, float* work,
                    cudaStream_t s);
void lora_dx(float* dx, int N, int in, int r, float p, const LoraTerm* terms, int count, cudaStream_t s);
// Backend::lora_up: y is float or bf16 bits (T)
template <typename T>
void lora_up(T* y, int N, int out, const float* xa, const float* B, int r, float scale, const float* bias,
             bool accumulate, cudaStream_t s);
// Backend::lora_apply_down in one launch: `work` holds lora_apply_work_floats(N, in, r, count) floats (the splits'
// partial sums), `arrived` kMaxLoraTerms counters that are 0 before the launch (and are again after it).
size_t lora_apply_work_floats(int N, int in, int r, int count);
void lora_apply_down(const float* x, const uint16_t* x16, int N, int in, int r, const float* const* A, int count,
                     float* xa, float* work, unsigned* arrived, cudaStream_t s);

// adamw.cu
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h, cudaStream_t s);

}  // namespace tf::cuda
