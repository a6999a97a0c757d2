// Dev-addon bindings of the loss stage (never shipped): the float64 references, the bench kernels
// and the CPU-path switch.
//   policyGradientReference({logits f64, rows, vocab, actions, advantages f64, mask, oldLogprobs? f64,
//                            low, high, dual}) -> { loss, grad f64, clippedFraction }
//   sparseDivergenceReference({logits f64, rows, vocab, rowPtr, ids, bucketPtr?, members?, probs f64,
//                              tail f64, mask, divergence, beta, temperature, epsilon}) -> { loss, grad f64, rowLoss f64 }
//     (bucketPtr/members: every bucket's ids listed; without them bucket b is the id ids[b])
//   lossSimd(name?) -> the CPU path of THIS addon's loss kernels ("auto" | "avx2" | "scalar")
//   copyParallel(dst, src); sparseDivergenceUnfused({...}) -> mean loss;
//   lossCudaBench({rows, vocab, dtype, support, iters}) -> { fusedSeconds, unfusedSeconds, copySeconds, device }
#include <string>

#include "common/binding.h"
#include "loss/loss_bench.h"
#include "loss/loss_reference.h"
#include "loss/row_ops.h"

namespace xopd {
namespace loss {
namespace {

struct RefShape {
  View<double> logits;
  size_t rows, vocab;
};

RefShape ReferenceLogits(const Napi::Object& o) {
  RefShape s;
  s.logits = TypedArg<double>(o.Get("logits"), "logits");
  s.rows = static_cast<size_t>(IntArg(o.Get("rows"), "rows"));
  s.vocab = static_cast<size_t>(IntArg(o.Get("vocab"), "vocab"));
  XOPD_CHECK(s.rows >= 1 && s.vocab >= 1 && s.logits.size == s.rows * s.vocab, "E_ARG_SHAPE", "logits must be rows * vocab");
  return s;
}

Napi::Value JsPolicyGradientReference(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object o = info[0].As<Napi::Object>();
    const RefShape L = ReferenceLogits(o);
    auto actions = TypedArg<int32_t>(o.Get("actions"), "actions");
    auto adv = TypedArg<double>(o.Get("advantages"), "advantages");
    auto mask = TypedArg<uint8_t>(o.Get("mask"), "mask");
    auto old = OptionalTypedArg<double>(o.Get("oldLogprobs"), "oldLogprobs");
    XOPD_CHECK(actions.size == L.rows && adv.size == L.rows && mask.size == L.rows && (!old.data || old.size == L.rows),
               "E_ARG_SHAPE", "per-row arrays must have rows entries");
    for (size_t r = 0; r < L.rows; ++r)
      XOPD_CHECK(actions[r] >= 0 && static_cast<size_t>(actions[r]) < L.vocab, "E_TOKEN_ID", "actions must be in [0, vocab)");
    PolicyGradientReferenceResult r;
    PolicyGradientReference(L.logits.data, L.rows, L.vocab, actions.data, adv.data, mask.data, old.data,
                            NumArg(o.Get("low"), "low"), NumArg(o.Get("high"), "high"), NumArg(o.Get("dual"), "dual"), r);
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", Napi::Number::New(env, r.loss));
    out.Set("grad", CopyOut(env, r.grad.data(), r.grad.size()));
    out.Set("clippedFraction", Napi::Number::New(env, r.clippedFraction));
    return out;
  });
}

Napi::Value JsSparseDivergenceReference(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object o = info[0].As<Napi::Object>();
    const RefShape L = ReferenceLogits(o);
    auto rowPtr = TypedArg<int32_t>(o.Get("rowPtr"), "rowPtr");
    auto ids = OptionalTypedArg<int32_t>(o.Get("ids"), "ids");
    auto probs = TypedArg<double>(o.Get("probs"), "probs");
    auto tail = TypedArg<double>(o.Get("tail"), "tail");
    auto mask = TypedArg<uint8_t>(o.Get("mask"), "mask");
    auto bucketPtr = OptionalTypedArg<int32_t>(o.Get("bucketPtr"), "bucketPtr");
    auto members = OptionalTypedArg<int32_t>(o.Get("members"), "members");
    XOPD_CHECK(rowPtr.size == L.rows + 1 && tail.size == L.rows && mask.size == L.rows && rowPtr[0] == 0, "E_ARG_SHAPE",
               "bad target shapes");
    for (size_t r = 0; r < L.rows; ++r) XOPD_CHECK(rowPtr[r + 1] >= rowPtr[r], "E_ARG_VALUE", "rowPtr must be non-decreasing");
    XOPD_CHECK(static_cast<size_t>(rowPtr[L.rows]) <= probs.size, "E_ARG_SHAPE", "probs shorter than rowPtr says");
    if (bucketPtr.data) {
      XOPD_CHECK(members.data && bucketPtr.size == probs.size + 1 && bucketPtr[0] == 0 && static_cast<size_t>(bucketPtr[probs.size]) == members.size,
                 "E_ARG_SHAPE", "bucketPtr must have one entry per bucket + 1, ending at members.length");
      for (size_t b = 0; b < probs.size; ++b) XOPD_CHECK(bucketPtr[b + 1] >= bucketPtr[b], "E_ARG_VALUE", "bucketPtr must be non-decreasing");
      for (size_t k = 0; k < members.size; ++k)
        XOPD_CHECK(members[k] >= 0 && static_cast<size_t>(members[k]) < L.vocab, "E_TOKEN_ID", "members must be in [0, vocab)");
    } else {
      XOPD_CHECK(ids.size == probs.size, "E_ARG_SHAPE", "ids and probs must have the same length");
      for (size_t k = 0; k < ids.size; ++k)
        XOPD_CHECK(ids[k] >= 0 && static_cast<size_t>(ids[k]) < L.vocab, "E_TOKEN_ID", "ids must be in [0, vocab)");
    }
    SparseDivergenceReferenceResult r;
    SparseDivergenceReference(L.logits.data, L.rows, L.vocab, rowPtr.data, ids.data, bucketPtr.data, members.data, probs.data, tail.data, mask.data,
                              o.Get("divergence").As<Napi::String>().Utf8Value(), NumArg(o.Get("beta"), "beta"),
                              NumArg(o.Get("temperature"), "temperature"), NumArg(o.Get("epsilon"), "epsilon"), r);
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", Napi::Number::New(env, r.loss));
    out.Set("grad", CopyOut(env, r.grad.data(), r.grad.size()));
    out.Set("rowLoss", CopyOut(env, r.rowLoss.data(), r.rowLoss.size()));
    return out;
  });
}

Napi::Value JsLossSimd(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    if (info.Length() > 0 && info[0].IsString()) SetSimd(info[0].As<Napi::String>().Utf8Value());
    return Napi::String::New(info.Env(), ActiveSimd());
  });
}

Napi::Value JsCopyParallel(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    XOPD_CHECK(info.Length() == 2 && info[0].IsTypedArray() && info[1].IsTypedArray(), "E_ARG_TYPE",
               "copyParallel(dst, src) takes two typed arrays");
    Napi::TypedArray d = info[0].As<Napi::TypedArray>(), s = info[1].As<Napi::TypedArray>();
    XOPD_CHECK(d.ByteLength() == s.ByteLength(), "E_ARG_SHAPE", "dst and src must have the same byte length");
    CopyParallel(static_cast<uint8_t*>(d.ArrayBuffer().Data()) + d.ByteOffset(),
                 static_cast<const uint8_t*>(s.ArrayBuffer().Data()) + s.ByteOffset(), d.ByteLength());
    return info.Env().Undefined();
  });
}

Napi::Value JsSparseDivergenceUnfused(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Object o = info[0].As<Napi::Object>();
    auto logits = TypedArg<float>(o.Get("logits"), "logits");
    const size_t rows = static_cast<size_t>(IntArg(o.Get("rows"), "rows")), vocab = static_cast<size_t>(IntArg(o.Get("vocab"), "vocab"));
    auto rowPtr = TypedArg<int32_t>(o.Get("rowPtr"), "rowPtr");
    auto ids = TypedArg<int32_t>(o.Get("ids"), "ids");
    auto probs = TypedArg<float>(o.Get("probs"), "probs");
    auto tail = TypedArg<float>(o.Get("tail"), "tail");
    auto sm = TypedArg<float>(o.Get("softmax"), "softmax");
    auto out = TypedArg<float>(o.Get("out"), "out");
    XOPD_CHECK(rows >= 1 && vocab >= 1 && logits.size == rows * vocab && sm.size == logits.size && out.size == logits.size &&
                   rowPtr.size == rows + 1 && tail.size == rows && rowPtr[0] == 0 &&
                   static_cast<size_t>(rowPtr[rows]) <= ids.size && ids.size == probs.size,
               "E_ARG_SHAPE", "inconsistent shapes");
    const double loss = SparseDivergenceUnfused(logits.data, rows, vocab, rowPtr.data, ids.data, probs.data, tail.data, sm.data, out.data);
    return Napi::Number::New(info.Env(), loss);
  });
}

Napi::Value JsLossCudaBench(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Object o = info[0].As<Napi::Object>();
    const int64_t rows = IntArg(o.Get("rows"), "rows"), vocab = IntArg(o.Get("vocab"), "vocab");
    const int64_t support = IntArg(o.Get("support"), "support"), iters = IntArg(o.Get("iters"), "iters");
    XOPD_CHECK(rows >= 1 && vocab >= 1 && iters >= 1, "E_ARG_RANGE", "rows, vocab and iters must be >= 1");
    const bool bf16 = o.Get("dtype").IsString() && o.Get("dtype").As<Napi::String>().Utf8Value() == "bf16";
#ifdef XOPD_WITH_CUDA
    cuda::DeviceTiming t;
    const std::string err = cuda::BenchSparseDivergence(static_cast<size_t>(rows), static_cast<size_t>(vocab), bf16,
                                                        static_cast<int>(support), static_cast<int>(iters), &t);
    if (!err.empty()) throw Error("E_CUDA", err);
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("fusedSeconds", t.fusedSeconds);
    out.Set("unfusedSeconds", t.unfusedSeconds);
    out.Set("copySeconds", t.copySeconds);
    out.Set("device", t.device);
    return out;
#else
    (void)bf16;
    (void)support;
    throw Error("E_CUDA_UNAVAILABLE", "the addon was built without CUDA");
#endif
  });
}

Registration reg("dev.loss", [](Napi::Env env, Napi::Object exports) {
  exports.Set("policyGradientReference", Napi::Function::New(env, JsPolicyGradientReference, "policyGradientReference"));
  exports.Set("sparseDivergenceReference", Napi::Function::New(env, JsSparseDivergenceReference, "sparseDivergenceReference"));
  exports.Set("lossSimd", Napi::Function::New(env, JsLossSimd, "lossSimd"));
  exports.Set("copyParallel", Napi::Function::New(env, JsCopyParallel, "copyParallel"));
  exports.Set("sparseDivergenceUnfused", Napi::Function::New(env, JsSparseDivergenceUnfused, "sparseDivergenceUnfused"));
  exports.Set("lossCudaBench", Napi::Function::New(env, JsLossCudaBench, "lossCudaBench"));
});

}  // namespace
}  // namespace loss
}  // namespace xopd
