// Node-API binding of tf::cpu::sgemm: validates shapes against the typed arrays, then calls it.
#include "gemm_binding.h"

#include <omp.h>

#include <cstdint>
#include <string>

#include "gemm.h"
#include "gemm_simd.h"

namespace tf::cpu {
namespace {

Napi::Value fail(Napi::Env env, const std::string& message) {
  Napi::RangeError::New(env, "sgemm: " + message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Elements a rows x cols row-major matrix with row stride ld spans (0 when empty).
uint64_t span(int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return 0;
  return (uint64_t)(rows - 1) * (uint64_t)ld + (uint64_t)cols;
}

// Checks one operand; returns an error message, or "" when it fits.
std::string check_operand(const char* name, const char* ld_name, const Napi::Value& v, int rows,
                          int cols, int ld, const float** data) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    return std::string(name) + " must be a Float32Array";
  // An empty operand is never read, so its stride does not matter.
  if (rows > 0 && cols > 0 && ld < cols)
    return std::string(ld_name) + " (" + std::to_string(ld) + ") must be at least " +
           std::to_string(cols);
  Napi::Float32Array arr = v.As<Napi::Float32Array>();
  if (arr.ElementLength() < span(rows, cols, ld))
    return std::string(name) + " has " + std::to_string(arr.ElementLength()) + " elements, needs " +
           std::to_string(span(rows, cols, ld)) + " (" + std::to_string(rows) + " x " +
           std::to_string(cols) + ", stride " + std::to_string(ld) + ")";
  *data = arr.Data();
  return "";
}

Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 13)
    return fail(env, "expected 13 arguments (transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)");
  for (int i : {0, 1})
    if (!info[i].IsBoolean()) return fail(env, "transA/transB must be booleans");
  for (int i : {2, 3, 4, 5, 7, 9, 10, 12})
    if (!info[i].IsNumber()) return fail(env, "argument " + std::to_string(i + 1) + " must be a number");
  const bool ta = info[0].As<Napi::Boolean>(), tb = info[1].As<Napi::Boolean>();
  const int M = info[2].As<Napi::Number>().Int32Value(), N = info[3].As<Napi::Number>().Int32Value(),
            K = info[4].As<Napi::Number>().Int32Value();
  if (M < 0 || N < 0 || K < 0) return fail(env, "M, N and K must be >= 0");
  const float alpha = info[5].As<Napi::Number>().FloatValue(),
              beta = info[10].As<Napi::Number>().FloatValue();
  const int lda = info[7].As<Napi::Number>().Int32Value(), ldb = info[9].As<Napi::Number>().Int32Value(),
            ldc = info[12].As<Napi::Number>().Int32Value();
  const float *A = nullptr, *B = nullptr, *Cc = nullptr;
  // As stored: A is M x K (K x M when transposed), B is K x N (N x K when transposed), C is M x N.
  std::string err = check_operand("A", "lda", info[6], ta ? K : M, ta ? M : K, lda, &A);
  if (err.empty()) err = check_operand("B", "ldb", info[8], tb ? N : K, tb ? K : N, ldb, &B);
  if (err.empty()) err = check_operand("C", "ldc", info[11], M, N, ldc, &Cc);
  if (!err.empty()) return fail(env, err);
  sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, const_cast<float*>(Cc), ldc);
  return env.Undefined();
}

Napi::Value GemmInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  constexpr int w = gemm_detail::Simd::W;
  out.Set("isa", w == 16 ? "avx512" : w == 8 ? "avx2" : "scalar");
  out.Set("threads", omp_get_max_threads());
  return out;
}

}  // namespace

void RegisterGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("sgemm", Napi::Function::New(env, Sgemm, "sgemm"));
  exports.Set("gemmInfo", Napi::Function::New(env, GemmInfo, "gemmInfo"));
}

}  // namespace tf::cpu
