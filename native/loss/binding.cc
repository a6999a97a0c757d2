// JS bindings of the fused losses (loss.h): unpack, call, pack. Nothing is computed here.
//   policyGradient({logits, rows, vocab, actions, advantages, mask?, oldLogprobs?, low, high, dual,
//                   device, out?}) -> { loss, grad, clippedFraction, kept }
//   sparseDivergence({logits, rows, vocab, rowPtr, ids, probs, tail, groupLo?, groupHi?, byteOrder?,
//                     mask?, divergence, beta, temperature, epsilon, device, out?}) -> { loss, grad, kept }
//     (the bucket format of project/span_projection.h; groupLo/groupHi/byteOrder for prefix groups)
//   cudaSelfCheck() -> { ok, detail }   (loss.h CudaSelfCheck: device 'auto' runs it once)
// logits are a Float32Array, or a Uint16Array of bf16; the gradient has the same type (`out` to
// reuse a buffer, which may be logits itself).
#include <cmath>
#include <string>

#include "common/binding.h"
#include "loss/loss.h"

namespace xopd {
namespace loss {
namespace {

std::string StrField(const Napi::Object& o, const char* name, const char* dflt) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return dflt;
  if (!v.IsString()) throw Error("E_ARG_TYPE", std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

double NumField(const Napi::Object& o, const char* name, double dflt) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return dflt;
  return NumArg(v, name);
}

LogitsArg ParseLogits(const Napi::Object& o) {
  LogitsArg a;
  Napi::Value v = o.Get("logits");
  int64_t rows = IntArg(o.Get("rows"), "rows"), vocab = IntArg(o.Get("vocab"), "vocab");
  XOPD_CHECK(rows >= 1, "E_ARG_SHAPE", "rows must be at least 1 (empty batch)");
  XOPD_CHECK(vocab >= 1, "E_ARG_SHAPE", "vocab must be at least 1");
  a.rows = static_cast<size_t>(rows);
  a.vocab = static_cast<size_t>(vocab);
  size_t len;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
    auto t = TypedArg<uint16_t>(v, "logits");
    a.data = t.data;
    a.bf16 = true;
    len = t.size;
  } else {
    auto t = TypedArg<float>(v, "logits");
    a.data = t.data;
    len = t.size;
  }
  XOPD_CHECK(len / a.vocab == a.rows && len % a.vocab == 0, "E_ARG_SHAPE",
             "logits has " + std::to_string(len) + " values, expected rows * vocab = " + std::to_string(a.rows) + " * " +
                 std::to_string(a.vocab));
  return a;
}

// Optional Uint8Array mask [rows]; nullptr when absent.
const uint8_t* ParseMask(const Napi::Object& o, size_t rows) {
  auto m = OptionalTypedArg<uint8_t>(o.Get("mask"), "mask");
  if (!m.data) return nullptr;
  XOPD_CHECK(m.size == rows, "E_ARG_SHAPE", "mask must have one entry per row (" + std::to_string(rows) + "), got " + std::to_string(m.size));
  return m.data;
}

// Optional per-row array [rows]; nullptr when absent.
template <typename T>
const T* RowArg(const Napi::Object& o, const char* key, const char* name, size_t rows, bool optional = false) {
  auto v = optional ? OptionalTypedArg<T>(o.Get(key), name) : TypedArg<T>(o.Get(key), name);
  if (optional && !v.data) return nullptr;
  XOPD_CHECK(v.size == rows, "E_ARG_SHAPE", std::string(name) + " must have one entry per row");
  return v.data;
}

// The gradient buffer: o.out when given (same element type and length as logits), else a new one.
Napi::TypedArray MakeGrad(Napi::Env env, const Napi::Object& o, const LogitsArg& a, void** data) {
  const size_t n = a.rows * a.vocab;
  Napi::Value out = o.Get("out");
  if (!out.IsUndefined() && !out.IsNull()) {
    if (a.bf16) {
      auto t = TypedArg<uint16_t>(out, "out");
      XOPD_CHECK(t.size == n, "E_ARG_SHAPE", "out must have rows * vocab elements");
      *data = t.data;
    } else {
      auto t = TypedArg<float>(out, "out");
      XOPD_CHECK(t.size == n, "E_ARG_SHAPE", "out must have rows * vocab elements");
      *data = t.data;
    }
    return out.As<Napi::TypedArray>();
  }
  if (a.bf16) {
    Napi::Uint16Array g = Napi::Uint16Array::New(env, n);
    *data = g.Data();
    return g;
  }
  Napi::Float32Array g = Napi::Float32Array::New(env, n);
  *data = g.Data();
  return g;
}

Napi::Value JsPolicyGradient(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    XOPD_CHECK(info.Length() >= 1 && info[0].IsObject(), "E_ARG_TYPE", "policyGradient expects an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    PolicyGradientArgs a;
    a.logits = ParseLogits(o);
    const size_t rows = a.logits.rows;
    a.actions = RowArg<int32_t>(o, "actions", "actions", rows);
    a.advantages = RowArg<float>(o, "advantages", "advantages", rows);
    a.mask = ParseMask(o, rows);
    a.oldLogprobs = RowArg<float>(o, "oldLogprobs", "oldLogprobs", rows, /*optional=*/true);
    a.params.hasOld = a.oldLogprobs ? 1 : 0;
    a.params.low = NumField(o, "low", 0.2);
    a.params.high = NumField(o, "high", 0.28);
    a.params.dual = NumField(o, "dual", 10.0);
    const Device device = ParseDevice(StrField(o, "device", "cpu"));
    Napi::TypedArray grad = MakeGrad(env, o, a.logits, &a.grad);
    const LossTotals t = PolicyGradient(a, device);
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", Napi::Number::New(env, t.loss));
    out.Set("grad", grad);
    out.Set("clippedFraction", Napi::Number::New(env, t.clippedFraction));
    out.Set("kept", Napi::Number::New(env, static_cast<double>(t.kept)));
    return out;
  });
}

Napi::Value JsSparseDivergence(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    XOPD_CHECK(info.Length() >= 1 && info[0].IsObject(), "E_ARG_TYPE", "sparseDivergence expects an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    SparseDivergenceArgs a;
    a.logits = ParseLogits(o);
    const size_t rows = a.logits.rows;
    auto rowPtr = TypedArg<int32_t>(o.Get("rowPtr"), "targets.rowPtr");
    auto ids = TypedArg<int32_t>(o.Get("ids"), "targets.ids");
    auto probs = TypedArg<float>(o.Get("probs"), "targets.probs");
    auto tail = TypedArg<float>(o.Get("tail"), "targets.tail");
    XOPD_CHECK(rowPtr.size == rows + 1, "E_ARG_SHAPE", "targets.rowPtr must have rows + 1 entries");
    XOPD_CHECK(tail.size == rows, "E_ARG_SHAPE", "targets.tail must have one entry per row");
    XOPD_CHECK(ids.size == probs.size, "E_ARG_SHAPE", "targets.ids and targets.probs must have the same length");
    a.rowPtr = rowPtr.data;
    a.ids = ids.data;
    a.probs = probs.data;
    a.tail = tail.data;
    a.nnz = ids.size;
    auto groupLo = OptionalTypedArg<int32_t>(o.Get("groupLo"), "targets.groups.lo");
    if (groupLo.data) {
      auto groupHi = TypedArg<int32_t>(o.Get("groupHi"), "targets.groups.hi");
      auto byteOrder = TypedArg<int32_t>(o.Get("byteOrder"), "targets.groups.byteOrder");
      XOPD_CHECK(groupLo.size == ids.size && groupHi.size == ids.size, "E_ARG_SHAPE",
                 "targets.groups.lo and targets.groups.hi must have one entry per bucket (targets.ids.length)");
      a.groupLo = groupLo.data;
      a.groupHi = groupHi.data;
      a.byteOrder = byteOrder.data;
      a.byteOrderSize = byteOrder.size;
    }
    a.mask = ParseMask(o, rows);
    const std::string kind = StrField(o, "divergence", "forward-kl");
    if (kind == "forward-kl") a.params.kind = kForwardKL;
    else if (kind == "reverse-kl") a.params.kind = kReverseKL;
    else if (kind == "jsd") a.params.kind = kJSD;
    else throw Error("E_ARG_VALUE", "divergence must be 'forward-kl', 'reverse-kl' or 'jsd'");
    a.params.beta = NumField(o, "beta", 0.5);
    const double temperature = NumField(o, "temperature", 1.0);
    XOPD_CHECK(temperature > 0 && std::isfinite(temperature), "E_ARG_RANGE", "temperature must be > 0");
    a.params.invTemp = 1.0 / temperature;
    a.params.epsilon = NumField(o, "epsilon", 1e-8);
    a.params.kind = ResolveKind(a.params.kind, a.params.beta);
    const Device device = ParseDevice(StrField(o, "device", "cpu"));
    Napi::TypedArray grad = MakeGrad(env, o, a.logits, &a.grad);
    const LossTotals t = SparseDivergence(a, device);
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", Napi::Number::New(env, t.loss));
    out.Set("grad", grad);
    out.Set("kept", Napi::Number::New(env, static_cast<double>(t.kept)));
    return out;
  });
}

Napi::Value JsCudaSelfCheck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CudaCheck c = CudaSelfCheck();
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", Napi::Boolean::New(env, c.ok));
  out.Set("detail", Napi::String::New(env, c.detail));
  return out;
}

Registration reg("loss", [](Napi::Env env, Napi::Object exports) {
  exports.Set("cudaSelfCheck", Napi::Function::New(env, JsCudaSelfCheck, "cudaSelfCheck"));
  exports.Set("policyGradient", Napi::Function::New(env, JsPolicyGradient, "policyGradient"));
  exports.Set("sparseDivergence", Napi::Function::New(env, JsSparseDivergence, "sparseDivergence"));
});

}  // namespace
}  // namespace loss
}  // namespace xopd
