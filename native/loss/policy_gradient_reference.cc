// Plain float64 reference of the policy-gradient loss (DESIGN 4), written for reading, not speed:
// full softmax per row, then the textbook PPO formulas. Tests compare the fused kernels to it.
//   logits [rows, vocab] (Float64Array), actions/advantages/old [rows], mask [rows]
#include <cmath>
#include <vector>

#include "common/errors.h"
#include "common/registry.h"
#include "common/typed.h"

namespace xopd {
namespace loss {
namespace {

Napi::Value PolicyGradientReference(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object o = info[0].As<Napi::Object>();
    auto logits = TypedArg<double>(o.Get("logits"), "logits");
    const size_t rows = static_cast<size_t>(IntArg(o.Get("rows"), "rows"));
    const size_t vocab = static_cast<size_t>(IntArg(o.Get("vocab"), "vocab"));
    XOPD_CHECK(rows >= 1 && vocab >= 1 && logits.size == rows * vocab, "E_ARG_SHAPE", "logits must be rows * vocab");
    auto actions = TypedArg<int32_t>(o.Get("actions"), "actions");
    auto adv = TypedArg<double>(o.Get("advantages"), "advantages");
    auto mask = TypedArg<uint8_t>(o.Get("mask"), "mask");
    XOPD_CHECK(actions.size == rows && adv.size == rows && mask.size == rows, "E_ARG_SHAPE", "per-row arrays must have rows entries");
    Napi::Value oldV = o.Get("oldLogprobs");
    const bool hasOld = !oldV.IsUndefined() && !oldV.IsNull();
    View<double> old;
    if (hasOld) old = TypedArg<double>(oldV, "oldLogprobs");
    const double low = NumArg(o.Get("low"), "low"), high = NumArg(o.Get("high"), "high"), dual = NumArg(o.Get("dual"), "dual");

    size_t kept = 0;
    for (size_t r = 0; r < rows; ++r) kept += mask[r] != 0;
    Napi::Float64Array grad = Napi::Float64Array::New(env, rows * vocab);
    double loss = 0.0;
    size_t clippedRows = 0;
    std::vector<double> p(vocab);
    for (size_t r = 0; r < rows; ++r) {
      if (!mask[r]) continue;
      const double* z = logits.data + r * vocab;
      double mx = -INFINITY;
      for (size_t v = 0; v < vocab; ++v) mx = std::max(mx, z[v]);
      double s = 0.0;
      for (size_t v = 0; v < vocab; ++v) s += std::exp(z[v] - mx);
      for (size_t v = 0; v < vocab; ++v) p[v] = std::exp(z[v] - mx) / s;
      const int32_t a = actions[r];
      const double logp = z[a] - mx - std::log(s);
      const double A = adv[r];

      double rowLoss, dLossDLogp;
      if (!hasOld) {
        rowLoss = -A * logp;  // REINFORCE with a per-token advantage
        dLossDLogp = -A;
      } else {
        const double ratio = std::exp(logp - old[r]);
        const double surr1 = ratio * A;
        const double surr2 = std::min(std::max(ratio, 1.0 - low), 1.0 + high) * A;
        double objective = std::min(surr1, surr2);
        bool clipped = surr2 < surr1;
        if (dual > 0 && A < 0 && dual * A > objective) {  // dual clip bounds the loss of bad actions
          objective = dual * A;
          clipped = true;
        }
        rowLoss = -objective;
        dLossDLogp = clipped ? 0.0 : -surr1;  // d(ratio*A)/dlogp = ratio*A
        clippedRows += clipped;
      }
      loss += rowLoss / kept;
      // d log pi(a) / d z_v = 1[v = a] - p_v
      for (size_t v = 0; v < vocab; ++v)
        grad[r * vocab + v] = dLossDLogp / kept * ((v == static_cast<size_t>(a) ? 1.0 : 0.0) - p[v]);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", Napi::Number::New(env, loss));
    out.Set("grad", grad);
    out.Set("clippedFraction", Napi::Number::New(env, kept ? static_cast<double>(clippedRows) / kept : 0.0));
    return out;
  });
}

Registration reg("loss.policy_gradient_reference", [](Napi::Env env, Napi::Object exports) {
  exports.Set("policyGradientReference", Napi::Function::New(env, PolicyGradientReference, "policyGradientReference"));
});

}  // namespace
}  // namespace loss
}  // namespace xopd
