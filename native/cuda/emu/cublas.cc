// The emulated cuBLAS (include/cublas_v2.h): column-major C = alpha op(A) op(B) + beta C, summed in double.
// Arguments are checked as cuBLAS checks them (CUBLAS_STATUS_INVALID_VALUE for a negative size or a leading
// dimension smaller than the stored rows), and with beta = 0 C is written without being read, so NaN garbage in
// an output buffer does not leak into the result (a kernel that relied on it would fail here). On a capturing
// stream a product is recorded as one graph node holding its arguments (alpha and beta read at the call, as
// cuBLAS's host pointer mode does) and computed when the graph runs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "capture.h"
#include "cublas_v2.h"
#include "engine/bf16.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
  // The user's workspace (cublasSetWorkspace) or nullptr for cuBLAS's own pool. The products here need none; it is
  // kept so the handle's state follows cuBLAS's rules (cublasSetStream drops it).
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

namespace {

// Element (r, c) of a stored column-major matrix of type t.
double load(const void* p, cudaDataType_t t, int64_t ld, int64_t r, int64_t c) {
  const int64_t i = r + c * ld;
  if (t == CUDA_R_16BF) return tf::bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  if (t == CUDA_R_16F) return tf::f16_to_f32(static_cast<const uint16_t*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

// The product itself, on arguments already checked.
void compute(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void* A,
             cudaDataType_t at, int lda, long long sa, const void* B, cudaDataType_t bt, int ldb, long long sb,
             float beta, void* C, cudaDataType_t ct, int ldc, long long sc, int batch) {
  std::vector<double> opa((size_t)m * k), bcol(k);  // op(A) row-major, then one column of op(B) at a time
  const size_t ea = at == CUDA_R_32F ? 4 : 2, eb = bt == CUDA_R_32F ? 4 : 2, ec = ct == CUDA_R_32F ? 4 : 2;
  for (int b = 0; b < batch; b++) {
    const void* Ab = static_cast<const char*>(A) + (int64_t)b * sa * (int64_t)ea;
    const void* Bb = static_cast<const char*>(B) + (int64_t)b * sb * (int64_t)eb;
    void* Cb = static_cast<char*>(C) + (int64_t)b * sc * (int64_t)ec;
    for (int i = 0; i < m; i++)
      for (int p = 0; p < k; p++)
        opa[(size_t)i * k + p] = ta == CUBLAS_OP_N ? load(Ab, at, lda, i, p) : load(Ab, at, lda, p, i);
    for (int j = 0; j < n; j++) {
      for (int p = 0; p < k; p++) bcol[p] = tb == CUBLAS_OP_N ? load(Bb, bt, ldb, p, j) : load(Bb, bt, ldb, j, p);
      for (int i = 0; i < m; i++) {
        const double* a = &opa[(size_t)i * k];
        double s = 0;
        for (int p = 0; p < k; p++) s += a[p] * bcol[p];
        // the fp32 result, rounded to a half C's type as cuBLAS does
        const float v = beta == 0.0f ? (float)(alpha * s) : (float)(alpha * s + (double)beta * load(Cb, ct, ldc, i, j));
        const int64_t at_c = i + (int64_t)j * ldc;
        if (ct == CUDA_R_16BF) static_cast<uint16_t*>(Cb)[at_c] = tf::f32_to_bf16(v);
        else if (ct == CUDA_R_16F) static_cast<uint16_t*>(Cb)[at_c] = tf::f32_to_f16(v);
        else static_cast<float*>(Cb)[at_c] = v;
      }
    }
  }
}

// Checks the arguments as cuBLAS does (before any work is queued), then runs the product on the handle's stream:
// now, or as a node of that stream's capture. Refused stream work (the legacy stream during a capture) is an
// execution failure, its CUDA error left as the last error.
cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                    const void* A, cudaDataType_t at, int lda, long long sa, const void* B, cudaDataType_t bt,
                    int ldb, long long sb, float beta, void* C, cudaDataType_t ct, int ldc, long long sc, int batch) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T) || m < 0 || n < 0 ||
      k < 0 || batch < 0)
    return CUBLAS_STATUS_INVALID_VALUE;
  const int a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
  if (lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  bool record = false;
  if (emu::issue(h->stream, "a cuBLAS product", record) != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
  if (record) {
    emu::record(h->stream, cudaGraphNodeTypeKernel, "a cuBLAS product", [=] {
      compute(ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct, ldc, sc, batch);
      return cudaSuccess;
    });
  } else if (emu::defers(h->stream)) {
    emu::later(h->stream,
               [=] { compute(ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct, ldc, sc, batch); });
  } else {
    compute(ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct, ldc, sc, batch);
  }
  return CUBLAS_STATUS_SUCCESS;
}

// cuBLAS's fp32-compute combinations that the backend uses: A and B of one type; C fp32, or (half A and B) C in their
// half type too.
bool supported(cudaDataType_t at, cudaDataType_t bt, cudaDataType_t ct, cublasComputeType_t compute) {
  return at == bt && (at == CUDA_R_32F || at == CUDA_R_16BF || at == CUDA_R_16F) &&
         (ct == CUDA_R_32F || (ct == at && at != CUDA_R_32F)) &&
         (compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_FAST_TF32);
}

}  // namespace

const char* cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}
cublasStatus_t cublasCreate(cublasHandle_t* h) {
  *h = new cublasContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
// As cuBLAS documents, setting the stream also resets the workspace to cuBLAS's own pool: a user workspace must
// be set again after every cublasSetStream.
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->stream = s;
  h->workspace = nullptr;
  h->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}
// cuBLAS wants the workspace aligned to 256 bytes (cudaMalloc's alignment). Guard-page allocations
// (TUNEFORGE_CUDA_EMU_GUARD=1) end against a page and are only element-aligned, so the check is off there.
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void* workspace, size_t bytes) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  static const bool guard = [] {
    const char* v = std::getenv("TUNEFORGE_CUDA_EMU_GUARD");
    return v && std::string(v) == "1";
  }();
  if (!guard && reinterpret_cast<uintptr_t>(workspace) % 256 != 0) return CUBLAS_STATUS_INVALID_VALUE;
  h->workspace = workspace;
  h->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t) {
  return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  return gemm(h, ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, 0, B, CUDA_R_32F, ldb, 0, *beta, C, CUDA_R_32F, ldc, 0, 1);
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float* alpha, const float* A, int lda, long long sa,
                                         const float* B, int ldb, long long sb, const float* beta, float* C, int ldc,
                                         long long sc, int batch) {
  return gemm(h, ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, sa, B, CUDA_R_32F, ldb, sb, *beta, C, CUDA_R_32F, ldc, sc, batch);
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void* alpha, const void* A, cudaDataType_t at, int lda, const void* B,
                            cudaDataType_t bt, int ldb, const void* beta, void* C, cudaDataType_t ct, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t) {
  if (!supported(at, bt, ct, compute)) return CUBLAS_STATUS_NOT_SUPPORTED;
  return gemm(h, ta, tb, m, n, k, *static_cast<const float*>(alpha), A, at, lda, 0, B, bt, ldb, 0,
              *static_cast<const float*>(beta), C, ct, ldc, 0, 1);
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void* alpha, const void* A, cudaDataType_t at, int lda,
                                          long long sa, const void* B, cudaDataType_t bt, int ldb, long long sb,
                                          const void* beta, void* C, cudaDataType_t ct, int ldc, long long sc,
                                          int batch, cublasComputeType_t compute, cublasGemmAlgo_t) {
  if (!supported(at, bt, ct, compute)) return CUBLAS_STATUS_NOT_SUPPORTED;
  return gemm(h, ta, tb, m, n, k, *static_cast<const float*>(alpha), A, at, lda, sa, B, bt, ldb, sb,
              *static_cast<const float*>(beta), C, ct, ldc, sc, batch);
}
