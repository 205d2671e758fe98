// CPU kernels (one file per family). Semantics are documented on tf::Backend in engine/backend.h.
#pragma once
#include <cstdint>

#include "engine/backend.h"

namespace tf::cpu {

// Work (elements touched) below which a kernel runs on the calling thread: forking the OpenMP team costs
// ~5-20 us, more than a small model's whole norm or optimizer update. Decided by size only, so results stay
// deterministic for a fixed thread count.
constexpr int64_t kParallelMin = 1 << 15;

void zero(float* x, int64_t n);
void copy(float* dst, const float* src, int64_t n);
void add(float* y, const float* x, int64_t n);
void add_out(float* out, const float* a, const float* b, int64_t n);
void scale(float* x, float s, int64_t n);
void mul(float* y, const float* x, int64_t n);
void add_bias(float* y, const float* bias, int N, int C);
void bias_grad(float* gb, const float* dy, int N, int C);
double sum_squares(const float* x, int64_t n);
void dropout(const float* x, float* mask, float* x_out, int64_t n, float p, uint64_t seed);
void cache_write(float* dst, const float* src, int B, int Tq, int Tk, int off, int C);

void embedding_fwd(const float* table, const int32_t* ids, int N, int C, float* out);
void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d);

void rmsnorm_fwd(const float* x, const float* w, int N, int C, float eps, float* out, float* rstd);
void rmsnorm_bwd(const float* x, const float* w, const float* rstd, const float* dy, int N, int C,
                 float* dx, bool accumulate_dx, float* dw);

void rope_table(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs);
void rope(float* x, const float* cs, int N, int heads, int hd, bool inverse);

void attention_fwd(const AttnDims& d, const float* q, const float* k, const float* v,
                   const int32_t* key_valid, const int32_t* seg, float* out, float* lse);
void attention_bwd(const AttnDims& d, const float* q, const float* k, const float* v,
                   const int32_t* key_valid, const int32_t* seg, const float* out, const float* lse,
                   const float* dout, float* dq, float* dk, float* dv, float* scratch);

void swiglu_fwd(const float* g, const float* u, int64_t n, float* out);
void swiglu_bwd(const float* g, const float* u, const float* dout, int64_t n, float* dg, float* du);

double cross_entropy(float* logits, const int32_t* targets, int N, int V, float grad_scale);

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h);
void adamw_many(float* const* ps, const float* const* gs, float* const* ms, float* const* vs, const int64_t* ns,
                int count, const AdamWHyper& h);

}  // namespace tf::cpu
