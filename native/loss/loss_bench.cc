// Bench-only bindings for `npm run bench -- loss`: this machine's parallel memcpy bandwidth, the
// unfused two-kernel CPU baseline (softmax written out, then a gradient pass reading it back), and
// the device-resident CUDA timings. Not part of the public API.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/errors.h"
#include "common/registry.h"
#include "common/threads.h"
#include "common/typed.h"
#include "loss/loss_cuda.h"
#include "loss/loss_math.h"
#include "loss/row_ops.h"

namespace xopd {
namespace loss {
namespace {

// copyParallel(dst, src): memcpy split over the worker threads (what "memory bandwidth" means here).
Napi::Value CopyParallel(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    XOPD_CHECK(info.Length() == 2 && info[0].IsTypedArray() && info[1].IsTypedArray(), "E_ARG_TYPE", "copyParallel(dst, src) takes two typed arrays");
    Napi::TypedArray d = info[0].As<Napi::TypedArray>(), s = info[1].As<Napi::TypedArray>();
    XOPD_CHECK(d.ByteLength() == s.ByteLength(), "E_ARG_SHAPE", "dst and src must have the same byte length");
    uint8_t* dst = static_cast<uint8_t*>(d.ArrayBuffer().Data()) + d.ByteOffset();
    const uint8_t* src = static_cast<const uint8_t*>(s.ArrayBuffer().Data()) + s.ByteOffset();
    const size_t n = d.ByteLength(), chunk = size_t{1} << 20;
    ParallelFor((n + chunk - 1) / chunk, [&](size_t b, size_t e, int) {
      const size_t lo = b * chunk, hi = std::min(n, e * chunk);
      std::memcpy(dst + lo, src + lo, hi - lo);
    });
    return info.Env().Undefined();
  });
}

// sparseDivergenceUnfused({logits, rows, vocab, rowPtr, ids, probs, tail, softmax, out}): forward KL,
// fp32. Kernel 1 writes softmax(z) to `softmax` [rows, vocab]; kernel 2 reads it back for p_other
// and writes grad = p * C (support entries fixed after). Returns the mean loss.
Napi::Value SparseDivergenceUnfused(const Napi::CallbackInfo& info) {
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
    XOPD_CHECK(logits.size == rows * vocab && sm.size == logits.size && out.size == logits.size && rowPtr.size == rows + 1 &&
                   tail.size == rows, "E_ARG_SHAPE", "inconsistent shapes");
    for (size_t k = 0; k < ids.size; ++k) XOPD_CHECK(ids[k] >= 0 && static_cast<size_t>(ids[k]) < vocab, "E_TOKEN_ID", "id out of range");
    const size_t minRows = std::max<size_t>(1, 65536 / vocab);
    // kernel 1: softmax, materialised
    ParallelFor(rows, [&](size_t b, size_t e, int) {
      for (size_t r = b; r < e; ++r) {
        float m;
        double s;
        if (!RowMaxSumExp(logits.data + r * vocab, vocab, 1.0f, nullptr, 0, &m, &s)) throw Error("E_ARG_VALUE", "non-finite logits");
        RowScaledExp(logits.data + r * vocab, vocab, 1.0f, m, static_cast<float>(1.0 / s), sm.data + r * vocab, false);
      }
    }, minRows);
    // kernel 2: gradient from the stored softmax
    std::vector<double> rowLoss(rows);
    const double w = 1.0 / rows;
    ParallelFor(rows, [&](size_t b, size_t e, int) {
      std::vector<uint8_t> inSupport(vocab);
      for (size_t r = b; r < e; ++r) {
        const float* p = sm.data + r * vocab;
        float* g = out.data + r * vocab;
        for (int32_t k = rowPtr[r]; k < rowPtr[r + 1]; ++k) inSupport[ids[k]] = 1;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t v = 0; v < vocab; ++v) acc[v & 7] += inSupport[v] ? 0.0f : p[v];
        double other = 0.0;
        for (float a : acc) other += a;
        double loss = 0.0, H = 0.0;
        for (int32_t k = rowPtr[r]; k < rowPtr[r + 1]; ++k) {
          BucketTerm t = Bucket(kForwardKL, 0, p[ids[k]], probs[k]);
          loss += t.loss;
          H += t.h;
        }
        const BucketTerm to = Bucket(kForwardKL, 0, other, tail[r]);
        loss += to.loss;
        H += to.h;
        const float C = static_cast<float>(((other > 0 ? to.h / other : 0.0) - H) * w);
        for (size_t v = 0; v < vocab; ++v) g[v] = p[v] * C;
        for (int32_t k = rowPtr[r]; k < rowPtr[r + 1]; ++k) {
          g[ids[k]] = static_cast<float>((-probs[k] - p[ids[k]] * H) * w);
          inSupport[ids[k]] = 0;
        }
        rowLoss[r] = loss;
      }
    }, minRows);
    double loss = 0.0;
    for (double l : rowLoss) loss += l;
    return Napi::Number::New(info.Env(), loss / rows);
  });
}

// lossCudaBench({rows, vocab, dtype: 'f32'|'bf16', support, iters}): device-resident timings.
Napi::Value LossCudaBench(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Object o = info[0].As<Napi::Object>();
    const int64_t rows = IntArg(o.Get("rows"), "rows"), vocab = IntArg(o.Get("vocab"), "vocab");
    const int64_t support = IntArg(o.Get("support"), "support"), iters = IntArg(o.Get("iters"), "iters");
    (void)support;
    XOPD_CHECK(rows >= 1 && vocab >= 1 && iters >= 1, "E_ARG_RANGE", "rows, vocab and iters must be >= 1");
    const bool bf16 = o.Get("dtype").IsString() && o.Get("dtype").As<Napi::String>().Utf8Value() == "bf16";
#ifdef XOPD_WITH_CUDA
    cuda::DeviceTiming t;
    std::string err = cuda::BenchSparseDivergence(static_cast<size_t>(rows), static_cast<size_t>(vocab), bf16, static_cast<int>(support),
                                                  static_cast<int>(iters), &t);
    if (!err.empty()) throw Error("E_CUDA", err);
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("fusedSeconds", t.fusedSeconds);
    out.Set("unfusedSeconds", t.unfusedSeconds);
    out.Set("copySeconds", t.copySeconds);
    out.Set("device", t.device);
    return out;
#else
    (void)bf16;
    throw Error("E_CUDA_UNAVAILABLE", "the addon was built without CUDA");
#endif
  });
}

Registration reg("loss.bench", [](Napi::Env env, Napi::Object exports) {
  exports.Set("copyParallel", Napi::Function::New(env, CopyParallel, "copyParallel"));
  exports.Set("sparseDivergenceUnfused", Napi::Function::New(env, SparseDivergenceUnfused, "sparseDivergenceUnfused"));
  exports.Set("lossCudaBench", Napi::Function::New(env, LossCudaBench, "lossCudaBench"));
});

}  // namespace
}  // namespace loss
}  // namespace xopd
