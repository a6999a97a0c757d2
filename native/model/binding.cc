// N-API surface of the embedded decoder: the TinyModel class and the two row kernels the facade
// calls directly (modelKernels: crossEntropy for pre-training, logprobsTopK for teacher scoring).
// Token ids crossing this boundary are indices into the id list.
#include <cmath>
#include <cstring>
#include <memory>

#include "model/binding.h"
#include "model/transformer.h"

namespace xopd {
namespace model {
namespace {

double NumField(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  XOPD_CHECK(v.IsNumber(), "E_MODEL_CONFIG", std::string("config.") + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

int IntField(const Napi::Object& o, const char* key) {
  const double d = NumField(o, key);
  XOPD_CHECK(d == static_cast<double>(static_cast<int>(d)), "E_MODEL_CONFIG", std::string("config.") + key + " must be an integer");
  return static_cast<int>(d);
}

}  // namespace

Config ConfigArg(const Napi::Value& v) {
  XOPD_CHECK(v.IsObject(), "E_MODEL_CONFIG", "config must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Config c;
  c.vocab = IntField(o, "vocab");
  c.dim = IntField(o, "dim");
  c.layers = IntField(o, "layers");
  c.heads = IntField(o, "heads");
  c.hidden = IntField(o, "hidden");
  c.maxSeq = IntField(o, "maxSeq");
  XOPD_CHECK(o.Get("swiglu").IsBoolean(), "E_MODEL_CONFIG", "config.swiglu must be a boolean");
  c.swiglu = o.Get("swiglu").As<Napi::Boolean>().Value();
  c.ropeTheta = static_cast<float>(NumField(o, "ropeTheta"));
  c.normEps = static_cast<float>(NumField(o, "normEps"));
  ValidateConfig(c);
  return c;
}

int CheckOffsets(const View<int32_t>& offsets, size_t n, const char* name) {
  XOPD_CHECK(offsets.size >= 1, "E_ARG_SHAPE", std::string(name) + " needs at least one entry");
  XOPD_CHECK(offsets[0] == 0 && static_cast<size_t>(offsets[offsets.size - 1]) == n, "E_ARG_SHAPE",
             std::string(name) + " must start at 0 and end at the token count");
  for (size_t i = 1; i < offsets.size; ++i)
    XOPD_CHECK(offsets[i] >= offsets[i - 1], "E_ARG_SHAPE", std::string(name) + " must be non-decreasing");
  return static_cast<int>(offsets.size - 1);
}

namespace {

class TinyModelWrap : public Napi::ObjectWrap<TinyModelWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "TinyModel", {
        InstanceMethod("layout", &TinyModelWrap::JsLayout),
        InstanceMethod("getParams", &TinyModelWrap::JsGetParams),
        InstanceMethod("setParams", &TinyModelWrap::JsSetParams),
        InstanceMethod("initParams", &TinyModelWrap::JsInitParams),
        InstanceMethod("getGrads", &TinyModelWrap::JsGetGrads),
        InstanceMethod("zeroGrads", &TinyModelWrap::JsZeroGrads),
        InstanceMethod("forward", &TinyModelWrap::JsForward),
        InstanceMethod("backward", &TinyModelWrap::JsBackward),
        InstanceMethod("setOptimizer", &TinyModelWrap::JsSetOptimizer),
        InstanceMethod("step", &TinyModelWrap::JsStep),
        InstanceMethod("getOptimizerState", &TinyModelWrap::JsGetOptimizerState),
        InstanceMethod("setOptimizerState", &TinyModelWrap::JsSetOptimizerState),
        InstanceMethod("generate", &TinyModelWrap::JsGenerate),
        InstanceAccessor("paramCount", &TinyModelWrap::JsParamCount, nullptr),
        InstanceAccessor("stepCount", &TinyModelWrap::JsStepCount, &TinyModelWrap::JsSetStepCount),
        InstanceAccessor("backwardReady", &TinyModelWrap::JsBackwardReady, nullptr),
    });
    exports.Set("TinyModel", fn);
  }

  explicit TinyModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TinyModelWrap>(info) {
    Guard(info, [&]() -> Napi::Value {
      model_ = std::make_unique<Transformer>(ConfigArg(info[0]));
      return info.Env().Undefined();
    });
  }

 private:
  Napi::Value JsLayout(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      const Layout& lay = model_->layout();
      Napi::Array out = Napi::Array::New(env, lay.tensors.size());
      for (size_t i = 0; i < lay.tensors.size(); ++i) {
        const Tensor& t = lay.tensors[i];
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", t.name);
        o.Set("offset", Napi::Number::New(env, static_cast<double>(t.offset)));
        Napi::Array shape = Napi::Array::New(env, t.shape.size());
        for (size_t j = 0; j < t.shape.size(); ++j) shape.Set(static_cast<uint32_t>(j), t.shape[j]);
        o.Set("shape", shape);
        o.Set("decay", Napi::Boolean::New(env, t.decay));
        out.Set(static_cast<uint32_t>(i), o);
      }
      return out;
    });
  }
  Napi::Value JsParamCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(model_->params().size()));
  }
  Napi::Value JsStepCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), model_->stepCount); }
  void JsSetStepCount(const Napi::CallbackInfo& info, const Napi::Value& v) {
    Guard(info, [&]() -> Napi::Value {
      const int64_t n = IntArg(v, "stepCount");
      XOPD_CHECK(n >= 0 && n < (1LL << 31), "E_ARG_RANGE", "stepCount must be in [0, 2^31)");
      model_->stepCount = static_cast<int>(n);
      return info.Env().Undefined();
    });
  }
  Napi::Value JsBackwardReady(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), model_->backwardReady());
  }
  Napi::Value JsGetParams(const Napi::CallbackInfo& info) {
    return CopyOut(info.Env(), model_->params().data(), model_->params().size());
  }
  Napi::Value JsSetParams(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      auto p = TypedArg<float>(info[0], "params");
      XOPD_CHECK(p.size == model_->params().size(), "E_ARG_SHAPE", "params has the wrong length for this config");
      std::memcpy(model_->params().data(), p.data, p.size * sizeof(float));
      model_->ParamsChanged();
      return info.Env().Undefined();
    });
  }
  Napi::Value JsInitParams(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      model_->InitParams(static_cast<uint64_t>(IntArg(info[0], "seed")));
      return info.Env().Undefined();
    });
  }
  Napi::Value JsGetGrads(const Napi::CallbackInfo& info) {
    return CopyOut(info.Env(), model_->grads().data(), model_->grads().size());
  }
  Napi::Value JsZeroGrads(const Napi::CallbackInfo& info) {
    model_->ZeroGrads();
    return info.Env().Undefined();
  }
  // forward(tokens Int32Array, offsets Int32Array [B+1], outStart Int32Array [B], train bool) -> Float32Array [R*V]
  Napi::Value JsForward(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      auto tokens = TypedArg<int32_t>(info[0], "tokens");
      auto offsets = TypedArg<int32_t>(info[1], "offsets");
      auto outStart = TypedArg<int32_t>(info[2], "outStart");
      XOPD_CHECK(info[3].IsBoolean(), "E_ARG_TYPE", "train must be a boolean");
      const int B = CheckOffsets(offsets, tokens.size, "offsets");
      XOPD_CHECK(outStart.size == static_cast<size_t>(B), "E_ARG_SHAPE", "outStart needs one entry per sequence");
      for (int s = 0; s < B; ++s)
        XOPD_CHECK(outStart[s] >= 0 && outStart[s] <= offsets[s + 1] - offsets[s], "E_ARG_RANGE",
                   "outStart must lie within its sequence");
      std::vector<float> logits;
      model_->Forward(tokens.data, offsets.data, B, outStart.data, info[3].As<Napi::Boolean>().Value(), logits);
      return CopyOut(info.Env(), logits.data(), logits.size());
    });
  }
  Napi::Value JsBackward(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      auto g = TypedArg<float>(info[0], "gradLogits");
      XOPD_CHECK(model_->backwardReady(), "E_MODEL_STATE", "backward needs a training forward first (one backward per forward)");
      XOPD_CHECK(g.size == static_cast<size_t>(model_->trainRows()) * model_->config().vocab, "E_ARG_SHAPE",
                 "gradLogits must have rows * vocab elements of the last forward");
      model_->Backward(g.data);
      return info.Env().Undefined();
    });
  }
  Napi::Value JsSetOptimizer(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      XOPD_CHECK(info[0].IsObject(), "E_ARG_TYPE", "optimizer options must be an object");
      Napi::Object o = info[0].As<Napi::Object>();
      OptimConfig c;
      c.lr = NumArg(o.Get("lr"), "lr");
      c.minLr = NumArg(o.Get("minLr"), "minLr");
      c.warmup = static_cast<int>(IntArg(o.Get("warmup"), "warmup"));
      c.totalSteps = static_cast<int>(IntArg(o.Get("totalSteps"), "totalSteps"));
      c.beta1 = NumArg(o.Get("beta1"), "beta1");
      c.beta2 = NumArg(o.Get("beta2"), "beta2");
      c.eps = NumArg(o.Get("eps"), "eps");
      c.weightDecay = NumArg(o.Get("weightDecay"), "weightDecay");
      c.clip = NumArg(o.Get("clip"), "clip");
      model_->optim = c;
      return info.Env().Undefined();
    });
  }
  Napi::Value JsStep(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      const StepInfo s = model_->Step();
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("lr", s.lr);
      o.Set("gradNorm", s.gradNorm);
      o.Set("step", s.step);
      return o;
    });
  }
  // getOptimizerState() -> { m, v: Float32Array [params], step }
  Napi::Value JsGetOptimizerState(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("m", CopyOut(info.Env(), model_->adamM().data(), model_->adamM().size()));
    o.Set("v", CopyOut(info.Env(), model_->adamV().data(), model_->adamV().size()));
    o.Set("step", Napi::Number::New(info.Env(), model_->stepCount));
    return o;
  }
  // setOptimizerState(m, v, step): the moments and step count of a saved run (v must be >= 0).
  Napi::Value JsSetOptimizerState(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      auto m = TypedArg<float>(info[0], "m");
      auto v = TypedArg<float>(info[1], "v");
      const int64_t step = IntArg(info[2], "step");
      const size_t n = model_->adamM().size();
      XOPD_CHECK(m.size == n && v.size == n, "E_ARG_SHAPE", "optimizer moments must have one entry per parameter (" + std::to_string(n) + ")");
      XOPD_CHECK(step >= 0 && step < (1LL << 31), "E_ARG_RANGE", "optimizer step must be in [0, 2^31)");
      for (size_t i = 0; i < n; ++i)
        XOPD_CHECK(std::isfinite(m[i]) && std::isfinite(v[i]) && v[i] >= 0.0f, "E_ARG_VALUE",
                   "optimizer moments must be finite, and the second moment >= 0 (entry " + std::to_string(i) + ")");
      std::memcpy(model_->adamM().data(), m.data, n * sizeof(float));
      std::memcpy(model_->adamV().data(), v.data, n * sizeof(float));
      model_->stepCount = static_cast<int>(step);
      return info.Env().Undefined();
    });
  }
  // generate(tokens, offsets, maxNew, temperature, topP, seed, stop Uint8Array [V], firstIndex)
  //   -> {tokens, logprobs, offsets}
  Napi::Value JsGenerate(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      auto tokens = TypedArg<int32_t>(info[0], "tokens");
      auto offsets = TypedArg<int32_t>(info[1], "offsets");
      const int B = CheckOffsets(offsets, tokens.size, "offsets");
      const int64_t maxNew = IntArg(info[2], "maxTokens");
      XOPD_CHECK(maxNew >= 0 && maxNew <= model_->config().maxSeq, "E_ARG_RANGE", "maxTokens out of range");
      const double temperature = NumArg(info[3], "temperature"), topP = NumArg(info[4], "topP");
      XOPD_CHECK(temperature >= 0 && topP > 0 && topP <= 1, "E_ARG_RANGE", "temperature >= 0 and topP in (0, 1] required");
      const int64_t seed = IntArg(info[5], "seed");
      auto stop = TypedArg<uint8_t>(info[6], "stop");
      XOPD_CHECK(stop.size == static_cast<size_t>(model_->config().vocab), "E_ARG_SHAPE", "stop needs one flag per vocab entry");
      XOPD_CHECK(seed >= 0, "E_ARG_RANGE", "seed must be >= 0");
      const int64_t firstIndex = IntArg(info[7], "firstIndex");
      XOPD_CHECK(firstIndex >= 0, "E_ARG_RANGE", "firstIndex must be >= 0");
      GenerateResult r;
      model_->Generate(tokens.data, offsets.data, B, static_cast<int>(maxNew), static_cast<float>(temperature),
                       static_cast<float>(topP), static_cast<uint64_t>(seed), static_cast<uint64_t>(firstIndex),
                       std::vector<uint8_t>(stop.data, stop.data + stop.size), r);
      Napi::Env env = info.Env();
      Napi::Object o = Napi::Object::New(env);
      o.Set("tokens", CopyOut(env, r.tokens.data(), r.tokens.size()));
      o.Set("logprobs", CopyOut(env, r.logprobs.data(), r.logprobs.size()));
      o.Set("offsets", CopyOut(env, r.offsets.data(), r.offsets.size()));
      return o;
    });
  }

  std::unique_ptr<Transformer> model_;
};

// crossEntropy(logits, targets Int32Array [R], V) -> { loss, grad }
Napi::Value JsCrossEntropy(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    auto z = TypedArg<float>(info[0], "logits");
    auto t = TypedArg<int32_t>(info[1], "targets");
    const int64_t V = IntArg(info[2], "vocab");
    XOPD_CHECK(V >= 1 && z.size == t.size * V, "E_ARG_SHAPE", "logits must be [rows * vocab] with one target per row");
    for (size_t i = 0; i < t.size; ++i)
      XOPD_CHECK(t[i] >= -1 && t[i] < V, "E_ARG_RANGE", "targets must be in [-1, vocab)");
    Napi::Float32Array g = Napi::Float32Array::New(info.Env(), z.size);
    const double loss = CrossEntropy(z.data, t.data, static_cast<int>(t.size), static_cast<int>(V), g.Data());
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("loss", loss);
    o.Set("grad", g);
    return o;
  });
}

// logprobsTopK(logits, targets [R], V, k, floor) -> { logprobs [R], topIdx [R*k], topLogprobs [R*k] }
Napi::Value JsLogprobsTopK(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    auto z = TypedArg<float>(info[0], "logits");
    auto t = TypedArg<int32_t>(info[1], "targets");
    const int64_t V = IntArg(info[2], "vocab"), k = IntArg(info[3], "k");
    const double floor = NumArg(info[4], "floor");
    XOPD_CHECK(V >= 1 && z.size == t.size * V, "E_ARG_SHAPE", "logits must be [rows * vocab] with one target per row");
    XOPD_CHECK(k >= 0 && k <= V, "E_ARG_RANGE", "k must be in [0, vocab]");
    for (size_t i = 0; i < t.size; ++i)
      XOPD_CHECK(t[i] >= -1 && t[i] < V, "E_ARG_RANGE", "targets must be in [-1, vocab)");
    Napi::Env env = info.Env();
    const size_t R = t.size;
    Napi::Float32Array lp = Napi::Float32Array::New(env, R), tl = Napi::Float32Array::New(env, R * k);
    Napi::Int32Array ti = Napi::Int32Array::New(env, R * k);
    LogProbsTopK(z.data, t.data, static_cast<int>(R), static_cast<int>(V), static_cast<int>(k),
                 static_cast<float>(floor), lp.Data(), ti.Data(), tl.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("logprobs", lp);
    o.Set("topIdx", ti);
    o.Set("topLogprobs", tl);
    return o;
  });
}

static Registration reg("model", [](Napi::Env env, Napi::Object exports) {
  TinyModelWrap::Init(env, exports);
  Napi::Object k = Napi::Object::New(env);
  k.Set("crossEntropy", Napi::Function::New(env, JsCrossEntropy, "crossEntropy"));
  k.Set("logprobsTopK", Napi::Function::New(env, JsLogprobsTopK, "logprobsTopK"));
  exports.Set("modelKernels", k);
});

}  // namespace
}  // namespace model
}  // namespace xopd
