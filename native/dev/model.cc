// Dev-addon bindings of the model stage (never shipped), all under `modelDev`:
//   gemm(M, N, K, a, aTrans, b, bTrans, c, accumulate, reference)  the packed kernel or the plain one
//   referenceForward(config, params f64, tokens, offsets, outStart) -> f64 logits [R, V]
//   measurePeak(seconds) -> { flops, threads, kernel };  gemmKernel() -> "avx2-fma" | "generic"
// and every layer op of model/ops.h on its own (float32, shapes as in ops.h), for the per-op tests:
//   rmsNormForward(x, w, N, d, eps) -> { y, rstd };  rmsNormBackward(dy, x, w, rstd, N, d) -> { dx, dw }
//   ropeForward|ropeBackward(qkv, N, d, heads, positions, theta) -> rotated copy of qkv [N, 3d]
//   attentionForward(qkv, T, d, heads) -> { p [H, T, T], out [T, d] }
//   attentionBackward(dout, qkv, p, T, d, heads) -> dqkv [T, 3d]
//   swiGluForward(gu, N, h) -> act;  swiGluBackward(dact, gu, N, h) -> dgu
//   geluForward(u, N, h) -> act;  geluBackward(dact, u, N, h) -> du
//   embeddingForward(tokens, table, d) -> x;  embeddingBackward(dx, tokens, V, d) -> dtable
//   learningRate(optim, step);  gradNorm(g)
//   adamwUpdate(p, g, m, v, decay, optim, lr, step, gscale) -> { p, m, v } (updated copies)
// optim: { lr, minLr, warmup, totalSteps, beta1, beta2, eps, weightDecay }.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "model/binding.h"
#include "model/gemm.h"
#include "model/model_reference.h"
#include "model/ops.h"
#include "model/peak_bench.h"

namespace xopd {
namespace model {
namespace {

int Dim(const Napi::Value& v, const char* name) {
  const int64_t n = IntArg(v, name);
  XOPD_CHECK(n >= 1 && n <= (1 << 24), "E_ARG_RANGE", std::string(name) + " must be in [1, 2^24]");
  return static_cast<int>(n);
}

View<float> F32(const Napi::Value& v, const char* name, size_t n) {
  auto t = TypedArg<float>(v, name);
  XOPD_CHECK(t.size == n, "E_ARG_SHAPE", std::string(name) + " must have " + std::to_string(n) + " elements");
  return t;
}

Napi::Float32Array NewF32(Napi::Env env, size_t n) { return Napi::Float32Array::New(env, n); }

OptimConfig OptimArg(const Napi::Value& v) {
  XOPD_CHECK(v.IsObject(), "E_ARG_TYPE", "optim must be an object");
  Napi::Object o = v.As<Napi::Object>();
  OptimConfig c;
  auto num = [&](const char* k, double& out) {
    if (o.Has(k) && !o.Get(k).IsUndefined()) out = NumArg(o.Get(k), k);
  };
  auto integer = [&](const char* k, int& out) {
    if (o.Has(k) && !o.Get(k).IsUndefined()) out = static_cast<int>(IntArg(o.Get(k), k));
  };
  num("lr", c.lr);
  num("minLr", c.minLr);
  integer("warmup", c.warmup);
  integer("totalSteps", c.totalSteps);
  num("beta1", c.beta1);
  num("beta2", c.beta2);
  num("eps", c.eps);
  num("weightDecay", c.weightDecay);
  return c;
}

Napi::Value JsGemm(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int M = static_cast<int>(IntArg(info[0], "M")), N = static_cast<int>(IntArg(info[1], "N")),
              K = static_cast<int>(IntArg(info[2], "K"));
    XOPD_CHECK(M >= 0 && N >= 0 && K >= 0, "E_ARG_RANGE", "M, N, K must be >= 0");
    auto a = TypedArg<float>(info[3], "a");
    auto b = TypedArg<float>(info[5], "b");
    auto c = TypedArg<float>(info[7], "c");
    XOPD_CHECK(a.size == size_t(M) * K && b.size == size_t(K) * N && c.size == size_t(M) * N, "E_ARG_SHAPE",
               "a [M*K], b [K*N], c [M*N] required");
    const bool aT = info[4].ToBoolean(), bT = info[6].ToBoolean(), acc = info[8].ToBoolean();
    const size_t lda = aT ? M : K, ldb = bT ? K : N;
    if (info[9].ToBoolean()) {
      GemmReference(M, N, K, a.data, lda, aT, b.data, ldb, bT, c.data, N, acc);
    } else {
      PackedB pb;
      PackB(b.data, ldb, bT, K, N, pb);
      Gemm(M, a.data, lda, aT, pb, c.data, N, acc);
    }
    return info.Env().Undefined();
  });
}

Napi::Value JsReferenceForward(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const Config c = ConfigArg(info[0]);
    auto p = TypedArg<double>(info[1], "params");
    auto tokens = TypedArg<int32_t>(info[2], "tokens");
    auto offsets = TypedArg<int32_t>(info[3], "offsets");
    auto outStart = TypedArg<int32_t>(info[4], "outStart");
    XOPD_CHECK(p.size == MakeLayout(c).total, "E_ARG_SHAPE", "params has the wrong length for this config");
    const int B = CheckOffsets(offsets, tokens.size, "offsets");
    XOPD_CHECK(outStart.size == static_cast<size_t>(B), "E_ARG_SHAPE", "outStart needs one entry per sequence");
    for (size_t i = 0; i < tokens.size; ++i)
      XOPD_CHECK(tokens[i] >= -1 && tokens[i] < c.vocab, "E_TOKEN_ID", "token index outside the id list");
    for (int s = 0; s < B; ++s)
      XOPD_CHECK(outStart[s] >= 0 && outStart[s] <= offsets[s + 1] - offsets[s], "E_ARG_RANGE", "outStart out of range");
    std::vector<double> logits;
    ReferenceForward(c, p.data, tokens.data, offsets.data, B, outStart.data, logits);
    return CopyOut(info.Env(), logits.data(), logits.size());
  });
}

Napi::Value JsMeasurePeak(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const double s = NumArg(info[0], "seconds");
    XOPD_CHECK(s > 0 && s <= 60, "E_ARG_RANGE", "seconds must be in (0, 60]");
    const PeakResult r = MeasurePeak(s);
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("flops", r.flops);
    o.Set("threads", r.threads);
    o.Set("kernel", r.kernel);
    return o;
  });
}

Napi::Value JsGemmKernel(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), GemmKernelName()); }

Napi::Value JsRmsNormForward(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int N = Dim(info[2], "N"), d = Dim(info[3], "d");
    auto x = F32(info[0], "x", size_t(N) * d);
    auto w = F32(info[1], "w", d);
    const float eps = static_cast<float>(NumArg(info[4], "eps"));
    Napi::Env env = info.Env();
    Napi::Float32Array y = NewF32(env, size_t(N) * d), rstd = NewF32(env, N);
    RmsNormForward(x.data, w.data, N, d, eps, y.Data(), rstd.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("y", y);
    o.Set("rstd", rstd);
    return o;
  });
}

Napi::Value JsRmsNormBackward(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int N = Dim(info[4], "N"), d = Dim(info[5], "d");
    auto dy = F32(info[0], "dy", size_t(N) * d);
    auto x = F32(info[1], "x", size_t(N) * d);
    auto w = F32(info[2], "w", d);
    auto rstd = F32(info[3], "rstd", N);
    Napi::Env env = info.Env();
    Napi::Float32Array dx = NewF32(env, size_t(N) * d), dw = NewF32(env, d);  // zeroed: dw accumulates
    RmsNormBackward(dy.data, x.data, w.data, rstd.data, N, d, dx.Data(), false, dw.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("dx", dx);
    o.Set("dw", dw);
    return o;
  });
}

// ropeForward / ropeBackward share their arguments; backward = true applies the inverse rotation.
Napi::Value Rope(const Napi::CallbackInfo& info, bool backward) {
  return Guard(info, [&]() -> Napi::Value {
    const int N = Dim(info[1], "N"), d = Dim(info[2], "d"), heads = Dim(info[3], "heads");
    XOPD_CHECK(d % heads == 0 && (d / heads) % 2 == 0, "E_ARG_SHAPE", "d / heads must be an even integer");
    auto qkv = F32(info[0], "qkv", size_t(N) * 3 * d);
    auto pos = TypedArg<int32_t>(info[4], "positions");
    XOPD_CHECK(pos.size == static_cast<size_t>(N), "E_ARG_SHAPE", "positions needs one entry per row");
    int maxPos = 0;
    for (size_t i = 0; i < pos.size; ++i) {
      XOPD_CHECK(pos[i] >= 0 && pos[i] < (1 << 20), "E_ARG_RANGE", "positions must be in [0, 2^20)");
      maxPos = std::max(maxPos, pos[i]);
    }
    RopeTable table;
    table.Build(maxPos + 1, d / heads, static_cast<float>(NumArg(info[5], "theta")));
    Napi::Float32Array out = CopyOut(info.Env(), qkv.data, qkv.size);
    if (backward) RopeBackward(out.Data(), N, d, heads, pos.data, table);
    else RopeForward(out.Data(), N, d, heads, pos.data, table);
    return out;
  });
}
Napi::Value JsRopeForward(const Napi::CallbackInfo& info) { return Rope(info, false); }
Napi::Value JsRopeBackward(const Napi::CallbackInfo& info) { return Rope(info, true); }

Napi::Value JsAttentionForward(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int T = Dim(info[1], "T"), d = Dim(info[2], "d"), heads = Dim(info[3], "heads");
    XOPD_CHECK(d % heads == 0, "E_ARG_SHAPE", "d must be a multiple of heads");
    auto qkv = F32(info[0], "qkv", size_t(T) * 3 * d);
    Napi::Env env = info.Env();
    Napi::Float32Array p = NewF32(env, size_t(heads) * T * T), out = NewF32(env, size_t(T) * d);
    AttentionScratch s;
    for (int h = 0; h < heads; ++h) AttentionForward(qkv.data, T, d, heads, h, p.Data() + size_t(h) * T * T, out.Data(), d, s);
    Napi::Object o = Napi::Object::New(env);
    o.Set("p", p);
    o.Set("out", out);
    return o;
  });
}

Napi::Value JsAttentionBackward(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int T = Dim(info[3], "T"), d = Dim(info[4], "d"), heads = Dim(info[5], "heads");
    XOPD_CHECK(d % heads == 0, "E_ARG_SHAPE", "d must be a multiple of heads");
    auto dout = F32(info[0], "dout", size_t(T) * d);
    auto qkv = F32(info[1], "qkv", size_t(T) * 3 * d);
    auto p = F32(info[2], "p", size_t(heads) * T * T);
    Napi::Float32Array dqkv = NewF32(info.Env(), size_t(T) * 3 * d);
    AttentionScratch s;
    for (int h = 0; h < heads; ++h) AttentionBackward(dout.data, d, qkv.data, p.data + size_t(h) * T * T, T, d, heads, h, dqkv.Data(), s);
    return dqkv;
  });
}

Napi::Value JsSwiGluForward(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int N = Dim(info[1], "N"), h = Dim(info[2], "h");
    auto gu = F32(info[0], "gu", size_t(N) * 2 * h);
    Napi::Float32Array act = NewF32(info.Env(), size_t(N) * h);
    SwiGluForward(gu.data, N, h, act.Data());
    return act;
  });
}

Napi::Value JsSwiGluBackward(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int N = Dim(info[2], "N"), h = Dim(info[3], "h");
    auto dact = F32(info[0], "dact", size_t(N) * h);
    auto gu = F32(info[1], "gu", size_t(N) * 2 * h);
    Napi::Float32Array dgu = NewF32(info.Env(), size_t(N) * 2 * h);
    SwiGluBackward(dact.data, gu.data, N, h, dgu.Data());
    return dgu;
  });
}

Napi::Value JsGeluForward(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int N = Dim(info[1], "N"), h = Dim(info[2], "h");
    auto u = F32(info[0], "u", size_t(N) * h);
    Napi::Float32Array act = NewF32(info.Env(), size_t(N) * h);
    GeluForward(u.data, N, h, act.Data());
    return act;
  });
}

Napi::Value JsGeluBackward(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int N = Dim(info[2], "N"), h = Dim(info[3], "h");
    auto dact = F32(info[0], "dact", size_t(N) * h);
    auto u = F32(info[1], "u", size_t(N) * h);
    Napi::Float32Array du = NewF32(info.Env(), size_t(N) * h);
    GeluBackward(dact.data, u.data, N, h, du.Data());
    return du;
  });
}

Napi::Value JsEmbeddingForward(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    auto tokens = TypedArg<int32_t>(info[0], "tokens");
    auto table = TypedArg<float>(info[1], "table");
    const int d = Dim(info[2], "d");
    XOPD_CHECK(table.size % d == 0, "E_ARG_SHAPE", "table must be [V, d]");
    const int64_t V = static_cast<int64_t>(table.size / d);
    for (size_t i = 0; i < tokens.size; ++i)
      XOPD_CHECK(tokens[i] >= -1 && tokens[i] < V, "E_TOKEN_ID", "tokens must be in [-1, V)");
    Napi::Float32Array x = NewF32(info.Env(), tokens.size * d);
    EmbeddingForward(tokens.data, static_cast<int>(tokens.size), table.data, d, x.Data());
    return x;
  });
}

Napi::Value JsEmbeddingBackward(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    auto tokens = TypedArg<int32_t>(info[1], "tokens");
    const int V = Dim(info[2], "V"), d = Dim(info[3], "d");
    auto dx = F32(info[0], "dx", tokens.size * d);
    for (size_t i = 0; i < tokens.size; ++i)
      XOPD_CHECK(tokens[i] >= -1 && tokens[i] < V, "E_TOKEN_ID", "tokens must be in [-1, V)");
    Napi::Float32Array dtable = NewF32(info.Env(), size_t(V) * d);  // zeroed: accumulates
    EmbeddingBackward(dx.data, tokens.data, static_cast<int>(tokens.size), d, dtable.Data());
    return dtable;
  });
}

Napi::Value JsLearningRate(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int64_t step = IntArg(info[1], "step");
    XOPD_CHECK(step >= 0 && step < (1LL << 31), "E_ARG_RANGE", "step must be in [0, 2^31)");
    return Napi::Number::New(info.Env(), LearningRate(OptimArg(info[0]), static_cast<int>(step)));
  });
}

Napi::Value JsGradNorm(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    auto g = TypedArg<float>(info[0], "g");
    return Napi::Number::New(info.Env(), GradNorm(g.data, g.size));
  });
}

Napi::Value JsAdamWUpdate(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    auto p0 = TypedArg<float>(info[0], "p");
    const size_t n = p0.size;
    auto g = F32(info[1], "g", n);
    auto m0 = F32(info[2], "m", n);
    auto v0 = F32(info[3], "v", n);
    auto decay = TypedArg<uint8_t>(info[4], "decay");
    XOPD_CHECK(decay.size == n, "E_ARG_SHAPE", "decay needs one flag per parameter");
    const OptimConfig c = OptimArg(info[5]);
    const double lr = NumArg(info[6], "lr");
    const int64_t step = IntArg(info[7], "step");
    XOPD_CHECK(step >= 1 && step < (1LL << 31), "E_ARG_RANGE", "step counts from 1");
    const float gscale = static_cast<float>(NumArg(info[8], "gscale"));
    Napi::Env env = info.Env();
    Napi::Float32Array p = CopyOut(env, p0.data, n), m = CopyOut(env, m0.data, n), v = CopyOut(env, v0.data, n);
    AdamWUpdate(p.Data(), g.data, m.Data(), v.Data(), n, decay.data, c, lr, static_cast<int>(step), gscale);
    Napi::Object o = Napi::Object::New(env);
    o.Set("p", p);
    o.Set("m", m);
    o.Set("v", v);
    return o;
  });
}

Registration reg("dev.model", [](Napi::Env env, Napi::Object exports) {
  Napi::Object k = Napi::Object::New(env);
  const std::pair<const char*, Napi::Function::Callback> fns[] = {
      {"gemm", JsGemm}, {"referenceForward", JsReferenceForward}, {"measurePeak", JsMeasurePeak},
      {"gemmKernel", JsGemmKernel}, {"rmsNormForward", JsRmsNormForward}, {"rmsNormBackward", JsRmsNormBackward},
      {"ropeForward", JsRopeForward}, {"ropeBackward", JsRopeBackward}, {"attentionForward", JsAttentionForward},
      {"attentionBackward", JsAttentionBackward}, {"swiGluForward", JsSwiGluForward}, {"swiGluBackward", JsSwiGluBackward},
      {"geluForward", JsGeluForward}, {"geluBackward", JsGeluBackward}, {"embeddingForward", JsEmbeddingForward},
      {"embeddingBackward", JsEmbeddingBackward}, {"learningRate", JsLearningRate}, {"gradNorm", JsGradNorm},
      {"adamwUpdate", JsAdamWUpdate},
  };
  for (const auto& [name, fn] : fns) k.Set(name, Napi::Function::New(env, fn, name));
  exports.Set("modelDev", k);
});

}  // namespace
}  // namespace model
}  // namespace xopd
