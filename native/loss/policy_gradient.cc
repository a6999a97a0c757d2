// Fused policy-gradient loss (DESIGN 4), forward and backward in one call, CPU path.
//   logits [rows, vocab] fp32|bf16, actions [rows], advantages [rows], mask [rows], old [rows]
//   loss = (1/N) sum_{r kept} loss_r(log pi(a_r)),  grad [rows, vocab] = d loss / d logits
// Per row: pass 1 = online max/sum-exp, then log pi(a) and the row coefficient w; pass 2 writes
//   grad_u = w * (1[u = a] - p_u) = exp(z_u - max) * (-w / sum), and grad_a = w * (1 - p_a).
#include <cmath>
#include <cstring>
#include <vector>

#include "common/errors.h"
#include "common/registry.h"
#include "common/threads.h"
#include "common/typed.h"
#include "loss/loss_args.h"
#include "loss/loss_cuda.h"
#include "loss/loss_math.h"
#include "loss/row_ops.h"

namespace xopd {
namespace loss {
namespace {

inline float LoadOne(const float* p) { return *p; }
inline float LoadOne(const uint16_t* p) { return Bf16ToF32(*p); }

template <typename T>
void PolicyGradientCpu(const T* logits, size_t rows, size_t vocab, const int32_t* actions, const float* adv,
                       const uint8_t* mask, const float* old, const PgParams& P, double invKept, T* grad,
                       double* rowLoss, int32_t* rowClipped) {
  const bool stream = StreamOutput(rows * vocab * sizeof(T));
  ParallelFor(rows, [&](size_t begin, size_t end, int) {
    RowPipeline<T> pipe(vocab, stream);
    for (size_t r = begin; r < end; ++r) {
      const T* z = logits + r * vocab;
      T* g = grad + r * vocab;
      rowLoss[r] = 0.0;
      rowClipped[r] = 0;
      if (mask && !mask[r]) {
        pipe.Zero(g);  // masked rows: no signal, not in N
        continue;
      }
      float m;
      double sum;
      if (!pipe.MaxSumExp(z, 1.0f, nullptr, 0, &m, &sum))
        throw Error("E_ARG_VALUE", "logits row " + std::to_string(r) + " holds NaN or an infinite value");
      const int32_t a = actions[r];
      const double logp = static_cast<double>(LoadOne(z + a)) - m - std::log(sum);
      const PgTerm t = PolicyGradientTerm(logp, adv[r], old ? old[r] : 0.0, P);
      const double w = t.dlogp * invKept;  // d loss / d log pi(a_r)
      // (a clipped row has w = 0: write +0, not -0)
      pipe.Write(g, m, w == 0.0 ? 0.0 : -w / sum);
      pipe.Fix(a, w == 0.0 ? 0.0 : -w * std::expm1(logp));  // w * (1 - p_a), without cancellation
      rowLoss[r] = t.loss;
      rowClipped[r] = t.clipped;
    }
    pipe.Flush();
  }, std::max<size_t>(1, 65536 / vocab));
}

Napi::Value PolicyGradientBinding(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    XOPD_CHECK(info.Length() >= 1 && info[0].IsObject(), "E_ARG_TYPE", "policyGradient expects an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    LogitsArg L = ParseLogits(o);
    auto actions = TypedArg<int32_t>(o.Get("actions"), "actions");
    auto adv = TypedArg<float>(o.Get("advantages"), "advantages");
    XOPD_CHECK(actions.size == L.rows, "E_ARG_SHAPE", "actions must have one entry per row");
    XOPD_CHECK(adv.size == L.rows, "E_ARG_SHAPE", "advantages must have one entry per row");
    size_t kept;
    const uint8_t* mask = ParseMask(o, L.rows, &kept);
    const float* old = nullptr;
    PgParams P;
    Napi::Value oldV = o.Get("oldLogprobs");
    if (!oldV.IsUndefined() && !oldV.IsNull()) {
      auto ov = TypedArg<float>(oldV, "oldLogprobs");
      XOPD_CHECK(ov.size == L.rows, "E_ARG_SHAPE", "oldLogprobs must have one entry per row");
      old = ov.data;
      P.hasOld = 1;
    }
    P.low = NumField(o, "low", 0.2);
    P.high = NumField(o, "high", 0.28);
    P.dual = NumField(o, "dual", 10.0);
    XOPD_CHECK(P.low >= 0 && P.low < 1 && P.high >= 0 && (P.dual == 0 || P.dual > 1), "E_ARG_RANGE",
               "clip needs 0 <= low < 1, high >= 0 and dual = 0 or > 1");
    for (size_t r = 0; r < L.rows; ++r) {
      if (mask && !mask[r]) continue;
      XOPD_CHECK(actions[r] >= 0 && static_cast<size_t>(actions[r]) < L.vocab, "E_TOKEN_ID",
                 "actions[" + std::to_string(r) + "] = " + std::to_string(actions[r]) + " is outside [0, vocab)");
      XOPD_CHECK(std::isfinite(adv[r]), "E_ARG_VALUE", "advantages[" + std::to_string(r) + "] is not finite");
      if (old) XOPD_CHECK(std::isfinite(old[r]) && old[r] <= 1e-4f, "E_ARG_VALUE",
                          "oldLogprobs[" + std::to_string(r) + "] must be a finite log-probability (<= 0)");
    }
    const std::string device = StrField(o, "device", "cpu");
    void* gradData;
    Napi::TypedArray grad = MakeGrad(env, o, L, &gradData);
    std::vector<double> rowLoss(L.rows);
    std::vector<int32_t> rowClipped(L.rows);
    const double invKept = kept ? 1.0 / static_cast<double>(kept) : 0.0;
    if (device == "cuda") {
#ifdef XOPD_WITH_CUDA
      int64_t badRow = -1;
      cuda::PolicyGradientArgs a{L.data, L.bf16, L.rows, L.vocab, actions.data, adv.data, mask, old, P, invKept,
                                 gradData, rowLoss.data(), rowClipped.data(), &badRow};
      std::string err = cuda::PolicyGradient(a);
      if (badRow >= 0) throw Error("E_ARG_VALUE", "logits row " + std::to_string(badRow) + " holds NaN or an infinite value");
      if (!err.empty()) throw Error("E_CUDA", err);
#else
      throw Error("E_CUDA_UNAVAILABLE", "the addon was built without CUDA");
#endif
    } else if (device == "cpu") {
      if (L.bf16)
        PolicyGradientCpu(static_cast<const uint16_t*>(L.data), L.rows, L.vocab, actions.data, adv.data, mask, old, P,
                          invKept, static_cast<uint16_t*>(gradData), rowLoss.data(), rowClipped.data());
      else
        PolicyGradientCpu(static_cast<const float*>(L.data), L.rows, L.vocab, actions.data, adv.data, mask, old, P,
                          invKept, static_cast<float*>(gradData), rowLoss.data(), rowClipped.data());
    } else {
      throw Error("E_ARG_VALUE", "device must be 'cpu' or 'cuda'");
    }
    double loss = 0.0;
    int64_t clipped = 0;
    for (size_t r = 0; r < L.rows; ++r) {  // row order: the same result for any thread count
      loss += rowLoss[r];
      clipped += rowClipped[r];
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", Napi::Number::New(env, loss * invKept));
    out.Set("grad", grad);
    out.Set("clippedFraction", Napi::Number::New(env, kept ? static_cast<double>(clipped) / kept : 0.0));
    out.Set("kept", Napi::Number::New(env, static_cast<double>(kept)));
    return out;
  });
}

Registration reg("loss.policy_gradient", [](Napi::Env env, Napi::Object exports) {
  exports.Set("policyGradient", Napi::Function::New(env, PolicyGradientBinding, "policyGradient"));
});

}  // namespace
}  // namespace loss
}  // namespace xopd
