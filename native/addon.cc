// Node-API entry point of the tuneforge engine: thin bindings only; the work happens in engine/.
#include <napi.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <string>

#include "cpu/gemm_binding.h"
#include "cuda/cuda_binding.h"
#ifdef TUNEFORGE_CUDA
#include "cuda/bandwidth.h"
#include "cuda/memory.h"
#endif
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/profile.h"
#include "engine/weights.h"

namespace {

using tf::Model;

template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
}

const int32_t* i32_or_null(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  return v.As<Napi::Int32Array>().Data();
}

Napi::Float32Array to_js(Napi::Env env, const float* data, size_t n) {
  Napi::Float32Array out = Napi::Float32Array::New(env, n);
  std::memcpy(out.Data(), data, n * sizeof(float));
  return out;
}

// A copy of an engine tensor (on any device) for JS.
Napi::Float32Array to_js(Napi::Env env, const tf::Tensor& t) {
  Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)t.numel());
  tf::copy_to_host(out.Data(), t);
  return out;
}

// The backend for a device name; the TypeScript side has already checked that CUDA is built and present.
std::unique_ptr<tf::Backend> backend_for(const std::string& device) {
  if (device == "cpu") return tf::make_cpu_backend();
  if (device == "cuda") {
#ifdef TUNEFORGE_CUDA
    return tf::make_cuda_backend();
#else
    throw std::runtime_error("this build of the tuneforge engine has no CUDA backend (no CUDA toolkit with cuBLAS "
                             "was found when it was compiled)");
#endif
  }
  throw std::runtime_error("unknown engine device \"" + device + "\" (cpu or cuda)");
}

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod("setLora", &NativeModel::SetLora),
                        InstanceMethod("setFullFinetune", &NativeModel::SetFullFinetune),
                        InstanceMethod("setLossChunk", &NativeModel::SetLossChunk),
                        InstanceMethod("setGradientCheckpointing", &NativeModel::SetGradientCheckpointing),
                        InstanceMethod("setCheckpointedLayers", &NativeModel::SetCheckpointedLayers),
                        InstanceMethod("checkpointedLayers", &NativeModel::CheckpointedLayers),
                        InstanceMethod("getTrainable", &NativeModel::GetTrainable),
                        InstanceMethod("setTrainable", &NativeModel::SetTrainable),
                        InstanceMethod("forward", &NativeModel::Forward),
                        InstanceMethod("forwardBackward", &NativeModel::ForwardBackward),
                        InstanceMethod("evalLoss", &NativeModel::EvalLoss),
                        InstanceMethod("getOptimizerState", &NativeModel::GetOptimizerState),
                        InstanceMethod("setOptimizerState", &NativeModel::SetOptimizerState),
                        InstanceMethod("getDropoutCounter", &NativeModel::GetDropoutCounter),
                        InstanceMethod("setDropoutCounter", &NativeModel::SetDropoutCounter),
                        InstanceMethod("zeroGrads", &NativeModel::ZeroGrads),
                        InstanceMethod("adamwStep", &NativeModel::AdamwStep),
                        InstanceMethod("resetOptimizer", &NativeModel::ResetOptimizer),
                        InstanceMethod("generate", &NativeModel::Generate),
                        InstanceMethod("mergedWeight", &NativeModel::MergedWeight),
                        InstanceMethod("memory", &NativeModel::Memory),
                        InstanceMethod("dispose", &NativeModel::Dispose)});
  }

  // new NativeModel(config, tensors: {name, file, offset, dtype, shape}[] | {seed, std}, threads,
  //                 device?: "cpu" | "cuda", weights?: "f32" | "bf16" | "f16")
  // With {seed, std} instead of a tensor list the weights are random, made on the device (Model::randomize).
  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    try {
      Napi::Object c = info[0].As<Napi::Object>();
      auto num = [&](const char* k) { return c.Get(k).As<Napi::Number>().DoubleValue(); };
      auto flag = [&](const char* k) { return c.Get(k).As<Napi::Boolean>().Value(); };
      tf::ModelConfig cfg;
      cfg.vocab = (int)num("vocab");
      cfg.hidden = (int)num("hidden");
      cfg.inter = (int)num("intermediate");
      cfg.layers = (int)num("layers");
      cfg.heads = (int)num("heads");
      cfg.kv_heads = (int)num("kvHeads");
      cfg.head_dim = (int)num("headDim");
      cfg.eps = (float)num("eps");
      cfg.tied = flag("tied");
      cfg.qkv_bias = flag("qkvBias");
      cfg.o_bias = flag("oBias");
      cfg.mlp_bias = flag("mlpBias");
      cfg.qk_norm = flag("qkNorm");
      Napi::Float64Array inv = c.Get("invFreq").As<Napi::Float64Array>();
      cfg.inv_freq.assign(inv.Data(), inv.Data() + inv.ElementLength());
      auto backend = backend_for(info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "cpu");
      backend->set_threads(info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0);
      device_ = backend->device();
      const std::string weights = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "f32";
      if (weights != "f32" && weights != "bf16" && weights != "f16")
        throw std::runtime_error("unknown weights dtype \"" + weights + "\" (f32, bf16 or f16)");
      model_ = std::make_unique<Model>(std::move(cfg), std::move(backend),
                                       weights == "bf16"  ? tf::DType::BF16
                                       : weights == "f16" ? tf::DType::F16
                                                          : tf::DType::F32);
      if (!info[1].IsArray()) {
        Napi::Object r = info[1].As<Napi::Object>();
        model_->randomize((uint64_t)r.Get("seed").As<Napi::Number>().Int64Value(),
                          r.Get("std").As<Napi::Number>().FloatValue());
        return;
      }
      Napi::Array tensors = info[1].As<Napi::Array>();
      size_t loaded = 0;
      for (uint32_t i = 0; i < tensors.Length(); i++) {
        Napi::Object t = tensors.Get(i).As<Napi::Object>();
        const std::string name = t.Get("name").As<Napi::String>();
        tf::Tensor* dst = model_->weight(name);
        if (!dst) throw std::runtime_error("the model has no weight named " + name);
        Napi::Array shape = t.Get("shape").As<Napi::Array>();
        int64_t n = 1;
        for (uint32_t d = 0; d < shape.Length(); d++) n *= shape.Get(d).As<Napi::Number>().Int64Value();
        if (n != dst->numel()) throw std::runtime_error(name + ": shape does not match the config");
        tf::load_tensor(*dst, t.Get("file").As<Napi::String>(), (uint64_t)t.Get("offset").As<Napi::Number>().Int64Value(),
                        t.Get("dtype").As<Napi::String>());
        loaded++;
      }
      if (loaded != model_->weight_names().size())
        throw std::runtime_error("expected " + std::to_string(model_->weight_names().size()) + " weights, got " +
                                 std::to_string(loaded));
    } catch (const std::exception& e) {
      model_.reset();
      Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    }
  }

 private:
  Model& model() {
    if (!model_) throw std::runtime_error("the model was disposed");
    return *model_;
  }

  // setLora(r, scale, dropout, seed, targets: string[])
  Napi::Value SetLora(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      tf::LoraConfig c;
      c.r = info[0].As<Napi::Number>().Int32Value();
      c.scale = info[1].As<Napi::Number>().FloatValue();
      c.dropout = info[2].As<Napi::Number>().FloatValue();
      c.seed = (uint64_t)info[3].As<Napi::Number>().Int64Value();
      std::array<bool, tf::NPROJ> targets{};
      Napi::Array list = info[4].As<Napi::Array>();
      for (uint32_t i = 0; i < list.Length(); i++) {
        const std::string t = list.Get(i).As<Napi::String>();
        bool found = false;
        for (int p = 0; p < tf::NPROJ; p++) {
          const std::string mod = tf::kProjModule[p];
          if (mod.substr(mod.find('.') + 1) == t) targets[p] = found = true;
        }
        if (!found) throw std::runtime_error("unknown LoRA target " + t);
      }
      model().set_lora(c, targets);
      optim_.reset();
      return info.Env().Undefined();
    });
  }

  Napi::Value SetFullFinetune(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      model().set_full_finetune(info[0].As<Napi::Boolean>().Value());
      optim_.reset();
      return info.Env().Undefined();
    });
  }

  Napi::Value SetLossChunk(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      model().set_loss_chunk(info[0].As<Napi::Number>().Int32Value());
      return info.Env().Undefined();
    });
  }

  Napi::Value SetGradientCheckpointing(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      model().set_gradient_checkpointing(info[0].As<Napi::Boolean>().Value());
      return info.Env().Undefined();
    });
  }

  // setCheckpointedLayers(k): the bottom k layers share one activation set, recomputed in backward (0..layers).
  Napi::Value SetCheckpointedLayers(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      model().set_checkpointed_layers(info[0].As<Napi::Number>().Int32Value());
      return info.Env().Undefined();
    });
  }

  Napi::Value CheckpointedLayers(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value { return Napi::Number::New(info.Env(), model().checkpointed_layers()); });
  }

  // getTrainable("weights" | "grads") -> { name: Float32Array } (copies)
  Napi::Value GetTrainable(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const bool grads = info[0].As<Napi::String>().Utf8Value() == "grads";
      Napi::Object out = Napi::Object::New(info.Env());
      for (const tf::ParamRef& p : model().trainable()) out.Set(p.name, to_js(info.Env(), grads ? *p.grad : *p.param));
      return out;
    });
  }

  // setTrainable("weights" | "grads", { name: Float32Array })
  Napi::Value SetTrainable(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const bool grads = info[0].As<Napi::String>().Utf8Value() == "grads";
      Napi::Object values = info[1].As<Napi::Object>();
      auto params = model().trainable();
      Napi::Array names = values.GetPropertyNames();
      for (uint32_t i = 0; i < names.Length(); i++) {
        const std::string name = names.Get(i).As<Napi::String>();
        Napi::Float32Array arr = values.Get(name).As<Napi::Float32Array>();
        bool found = false;
        for (const tf::ParamRef& p : params) {
          if (p.name != name) continue;
          if ((int64_t)arr.ElementLength() != p.n)
            throw std::runtime_error(name + ": expected " + std::to_string(p.n) + " values, got " +
                                     std::to_string(arr.ElementLength()));
          tf::copy_from_host(grads ? *p.grad : *p.param, arr.Data());
          found = true;
        }
        if (!found) throw std::runtime_error("no trainable parameter named " + name);
      }
      return info.Env().Undefined();
    });
  }

  static tf::Batch batch_from(const Napi::CallbackInfo& info, bool with_labels) {
    // (ids, mask, labels?, seg, pos, rows, T)
    int i = 0;
    tf::Batch b;
    b.ids = info[i++].As<Napi::Int32Array>().Data();
    b.mask = i32_or_null(info[i++]);
    if (with_labels) b.labels = info[i++].As<Napi::Int32Array>().Data();
    b.seg = i32_or_null(info[i++]);
    b.pos = i32_or_null(info[i++]);
    b.rows = info[i++].As<Napi::Number>().Int32Value();
    b.T = info[i++].As<Napi::Number>().Int32Value();
    return b;
  }

  Napi::Value Forward(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      tf::Batch b = batch_from(info, false);
      Napi::Float32Array out = Napi::Float32Array::New(info.Env(), (size_t)b.rows * b.T * model().config().vocab);
      model().forward_logits(b, out.Data());
      return out;
    });
  }

  Napi::Value ForwardBackward(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      tf::Batch b = batch_from(info, true);
      const float scale = info[7].As<Napi::Number>().FloatValue();
      tf::LossResult r = model().forward_backward(b, scale);
      Napi::Object out = Napi::Object::New(info.Env());
      out.Set("lossSum", r.loss_sum);
      out.Set("tokens", (double)r.tokens);
      return out;
    });
  }

  // evalLoss(ids, mask, labels, seg, pos, rows, T) -> {lossSum, tokens}; no backward, grads untouched
  Napi::Value EvalLoss(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      tf::LossResult r = model().eval_loss(batch_from(info, true));
      Napi::Object out = Napi::Object::New(info.Env());
      out.Set("lossSum", r.loss_sum);
      out.Set("tokens", (double)r.tokens);
      return out;
    });
  }

  // getOptimizerState() -> {step, m: {name: Float32Array}, v: {...}} (m, v empty before the first step)
  Napi::Value GetOptimizerState(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      Napi::Object m = Napi::Object::New(env), v = Napi::Object::New(env);
      auto params = model().trainable();
      if (optim_.m().size() == params.size())
        for (size_t i = 0; i < params.size(); i++) {
          m.Set(params[i].name, to_js(env, optim_.m()[i]));
          v.Set(params[i].name, to_js(env, optim_.v()[i]));
        }
      Napi::Object out = Napi::Object::New(env);
      out.Set("step", (double)optim_.steps());
      out.Set("m", m);
      out.Set("v", v);
      return out;
    });
  }

  // setOptimizerState(step, m, v): every trainable parameter must be present in both (or both empty at step 0)
  Napi::Value SetOptimizerState(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const int64_t step = info[0].As<Napi::Number>().Int64Value();
      Napi::Object m = info[1].As<Napi::Object>(), v = info[2].As<Napi::Object>();
      auto params = model().trainable();
      if (step == 0 && m.GetPropertyNames().Length() == 0) {
        optim_.reset();
        return info.Env().Undefined();
      }
      optim_.restore(params, step, model().device());
      for (size_t i = 0; i < params.size(); i++) {
        const tf::ParamRef& p = params[i];
        for (auto [src, dst] : {std::pair{m, &optim_.m()[i]}, std::pair{v, &optim_.v()[i]}}) {
          if (!src.Has(p.name)) throw std::runtime_error("optimizer state lacks " + p.name);
          Napi::Float32Array arr = src.Get(p.name).As<Napi::Float32Array>();
          if ((int64_t)arr.ElementLength() != p.n)
            throw std::runtime_error(p.name + ": optimizer state has " + std::to_string(arr.ElementLength()) +
                                     " values, expected " + std::to_string(p.n));
          tf::copy_from_host(*dst, arr.Data());
        }
      }
      return info.Env().Undefined();
    });
  }

  Napi::Value GetDropoutCounter(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), (double)model().dropout_counter());
    });
  }

  Napi::Value SetDropoutCounter(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      model().set_dropout_counter((uint64_t)info[0].As<Napi::Number>().Int64Value());
      return info.Env().Undefined();
    });
  }

  Napi::Value ZeroGrads(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      model().zero_grads();
      return info.Env().Undefined();
    });
  }

  // adamwStep(lr, beta1, beta2, eps, weightDecay, maxGradNorm) -> grad norm before clipping
  Napi::Value AdamwStep(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      tf::AdamWConfig c;
      c.lr = info[0].As<Napi::Number>().FloatValue();
      c.beta1 = info[1].As<Napi::Number>().FloatValue();
      c.beta2 = info[2].As<Napi::Number>().FloatValue();
      c.eps = info[3].As<Napi::Number>().FloatValue();
      c.weight_decay = info[4].As<Napi::Number>().FloatValue();
      c.max_grad_norm = info[5].As<Napi::Number>().FloatValue();
      return Napi::Number::New(info.Env(), optim_.step(model().backend(), model().trainable(), c));
    });
  }

  Napi::Value ResetOptimizer(const Napi::CallbackInfo& info) {
    optim_.reset();
    return info.Env().Undefined();
  }

  // generate(prompts: Int32Array flat, lengths: Int32Array, opts) -> {tokens, lengths, steps, replayedSteps,
  // stepLaunches, stepDepth, stepLogits?}
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      Napi::Int32Array flat = info[0].As<Napi::Int32Array>();
      Napi::Int32Array lens = info[1].As<Napi::Int32Array>();
      Napi::Object o = info[2].As<Napi::Object>();
      std::vector<std::vector<int32_t>> prompts;
      size_t at = 0;
      for (size_t i = 0; i < lens.ElementLength(); i++) {
        if (at + lens[i] > flat.ElementLength()) throw std::runtime_error("prompt lengths exceed the token array");
        prompts.emplace_back(flat.Data() + at, flat.Data() + at + lens[i]);
        at += lens[i];
      }
      tf::GenerateOptions g;
      g.max_new_tokens = o.Get("maxNewTokens").As<Napi::Number>().Int32Value();
      g.do_sample = o.Get("doSample").As<Napi::Boolean>().Value();
      g.temperature = o.Get("temperature").As<Napi::Number>().FloatValue();
      g.top_k = o.Get("topK").As<Napi::Number>().Int32Value();
      g.top_p = o.Get("topP").As<Napi::Number>().FloatValue();
      g.repetition_penalty = o.Get("repetitionPenalty").As<Napi::Number>().FloatValue();
      g.seed = (uint64_t)o.Get("seed").As<Napi::Number>().Int64Value();
      g.keep_logits = o.Get("keepLogits").As<Napi::Boolean>().Value();
      Napi::Int32Array eos = o.Get("eos").As<Napi::Int32Array>();
      g.eos.assign(eos.Data(), eos.Data() + eos.ElementLength());
      tf::GenerateResult r = tf::generate(model(), prompts, g);
      size_t total = 0;
      for (auto& t : r.tokens) total += t.size();
      Napi::Int32Array toks = Napi::Int32Array::New(info.Env(), total);
      Napi::Int32Array out_lens = Napi::Int32Array::New(info.Env(), r.tokens.size());
      at = 0;
      for (size_t i = 0; i < r.tokens.size(); i++) {
        std::memcpy(toks.Data() + at, r.tokens[i].data(), r.tokens[i].size() * 4);
        at += r.tokens[i].size();
        out_lens[i] = (int32_t)r.tokens[i].size();
      }
      Napi::Object out = Napi::Object::New(info.Env());
      out.Set("tokens", toks);
      out.Set("lengths", out_lens);
      out.Set("steps", r.steps);
      out.Set("replayedSteps", r.replayed_steps);
      out.Set("stepLaunches", (double)r.step_launches);
      out.Set("stepDepth", (double)r.step_depth);
      if (g.keep_logits) out.Set("stepLogits", to_js(info.Env(), r.step_logits.data(), r.step_logits.size()));
      return out;
    });
  }

  Napi::Value MergedWeight(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const std::string module = info[0].As<Napi::String>();
      tf::Tensor* w = model().weight(module + ".weight");
      if (!w) throw std::runtime_error("no weight " + module + ".weight");
      Napi::Float32Array out = Napi::Float32Array::New(info.Env(), w->numel());
      model().merged_weight(module, out.Data());
      return out;
    });
  }

  // memory() -> {inUse, peak, device, weightBytes, hostBytes, weights}: the allocator of the device the model lives on
  // (the GPU's for CUDA), and this model's base weights as stored (bytes, of them in pinned host memory, "f32" | "bf16"
  // | "f16").
  Napi::Value Memory(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      tf::Allocator& a = tf::allocator_for(device_);
      Napi::Object out = Napi::Object::New(info.Env());
      out.Set("inUse", (double)a.in_use());
      out.Set("peak", (double)a.peak());
      out.Set("device", device_ == tf::Device::CUDA ? "cuda" : "cpu");
      out.Set("weightBytes", (double)model().weight_bytes());
      out.Set("hostBytes", (double)model().host_weight_bytes());
      const tf::DType wd = model().weights_dtype();
      out.Set("weights", wd == tf::DType::BF16 ? "bf16" : wd == tf::DType::F16 ? "f16" : "f32");
      return out;
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    optim_.reset();
    model_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<Model> model_;
  tf::Device device_ = tf::Device::CPU;
  tf::AdamW optim_;
};

tf::Device device_arg(const Napi::Value& v) {
  const std::string d = v.As<Napi::String>();
  if (d == "cpu") return tf::Device::CPU;
  if (d == "cuda") {
#ifdef TUNEFORGE_CUDA
    return tf::Device::CUDA;
#else
    throw std::runtime_error("this build of the tuneforge engine has no CUDA backend");
#endif
  }
  throw std::runtime_error("unknown engine device \"" + d + "\" (cpu or cuda)");
}

// Benchmark support (bench/gpu.ts): profiling switch and tables, copy bandwidth, device sync, memory peak reset.
void RegisterBenchSupport(Napi::Env env, Napi::Object exports) {
  // setProfiling(on): models built afterwards get per-kernel timing (engine/profile.h)
  exports.Set("setProfiling", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                tf::set_profiling(info[0].As<Napi::Boolean>().Value());
                return info.Env().Undefined();
              }));
  // takeProfile() -> [{call, ms, rows: [{region, kernel, calls, ms, gflop, gbytes}]}], the reports since the last take
  exports.Set("takeProfile", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                Napi::Env e = info.Env();
                const std::vector<tf::ProfileReport> reports = tf::take_profile_reports();
                Napi::Array out = Napi::Array::New(e, reports.size());
                for (size_t i = 0; i < reports.size(); i++) {
                  Napi::Object rep = Napi::Object::New(e);
                  rep.Set("call", reports[i].call);
                  rep.Set("ms", reports[i].seconds * 1e3);
                  Napi::Array rows = Napi::Array::New(e, reports[i].rows.size());
                  for (size_t j = 0; j < reports[i].rows.size(); j++) {
                    const tf::ProfileRow& r = reports[i].rows[j];
                    Napi::Object row = Napi::Object::New(e);
                    row.Set("region", r.region);
                    row.Set("kernel", r.kernel);
                    row.Set("calls", (double)r.calls);
                    row.Set("ms", r.seconds * 1e3);
                    row.Set("gflop", r.flops / 1e9);
                    row.Set("gbytes", r.bytes / 1e9);
                    rows.Set((uint32_t)j, row);
                  }
                  rep.Set("rows", rows);
                  out.Set((uint32_t)i, rep);
                }
                return out;
              }));
  // copyBandwidth(device, bytes, iters) -> {bytes, iters, seconds, gbPerS}: a device-to-device copy on CUDA,
  // memcpy on the CPU; gbPerS counts each byte read and written (2 * bytes / seconds).
  exports.Set("copyBandwidth", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return guarded(info, [&]() -> Napi::Value {
                  const tf::Device dev = device_arg(info[0]);
                  const double bytes_d = info[1].As<Napi::Number>().DoubleValue();
                  const int iters = info[2].As<Napi::Number>().Int32Value();
                  if (!(bytes_d >= 1) || iters < 1) throw std::runtime_error("copyBandwidth: bytes and iters must be >= 1");
                  const size_t bytes = (size_t)bytes_d;
                  double seconds = 0;
                  if (dev == tf::Device::CPU) {
                    std::vector<char> src(bytes, 1), dst(bytes, 0);
                    std::memcpy(dst.data(), src.data(), bytes);  // untimed: first touch
                    const auto t0 = std::chrono::steady_clock::now();
                    for (int i = 0; i < iters; i++) {
                      src[(size_t)i % bytes] = (char)i;  // keep the copies from being merged away
                      std::memcpy(dst.data(), src.data(), bytes);
                    }
                    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
                  } else {
#ifdef TUNEFORGE_CUDA
                    seconds = tf::cuda::d2d_copy_bandwidth(bytes, iters).seconds;
#endif
                  }
                  Napi::Object out = Napi::Object::New(info.Env());
                  out.Set("bytes", (double)bytes);
                  out.Set("iters", iters);
                  out.Set("seconds", seconds);
                  out.Set("gbPerS", 2.0 * (double)bytes / seconds / 1e9);
                  return out;
                });
              }));
  // deviceSynchronize(device): waits for queued GPU work (no-op on the CPU), so host timers are honest
  exports.Set("deviceSynchronize", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return guarded(info, [&]() -> Napi::Value {
#ifdef TUNEFORGE_CUDA
                  if (device_arg(info[0]) == tf::Device::CUDA) tf::cuda::synchronize();
#else
                  device_arg(info[0]);
#endif
                  return info.Env().Undefined();
                });
              }));
  // resetMemoryPeak(device, releaseCached) -> {inUse, peak: the mark it ends}: restarts the allocator's high-water
  // mark at what is in use, so a benchmark case reports its own peak; with releaseCached the CUDA pool's cached
  // blocks go back to the driver first (between cases: cudaMemGetInfo then shows only the next case, and a peer
  // finds the memory)
  exports.Set("resetMemoryPeak", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return guarded(info, [&]() -> Napi::Value {
                  const tf::Device dev = device_arg(info[0]);
#ifdef TUNEFORGE_CUDA
                  if (dev == tf::Device::CUDA && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value())
                    tf::cuda::release_cached();
#endif
                  tf::Allocator& a = tf::allocator_for(dev);
                  const size_t peak = a.peak();
                  a.reset_peak();
                  Napi::Object out = Napi::Object::New(info.Env());
                  out.Set("inUse", (double)a.in_use());
                  out.Set("peak", (double)peak);
                  return out;
                });
              }));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return Napi::String::New(info.Env(), "0.1.0");
              }));
  exports.Set("NativeModel", NativeModel::Define(env));
  tf::cpu::RegisterGemm(env, exports);
  tf::cuda::RegisterCuda(env, exports);
  RegisterBenchSupport(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(tuneforge_native, Init)
