// Plain float64 reference of the policy-gradient loss (DESIGN 4), written for reading, not speed:
// full softmax per row, then the textbook PPO formulas. Tests compare the fused kernels to it
// (dev addon only; it shares no code with the kernels).
#include <algorithm>
#include <cmath>
#include <vector>

#include "loss/loss_reference.h"

namespace xopd {
namespace loss {

void PolicyGradientReference(const double* logits, size_t rows, size_t vocab, const int32_t* actions, const double* adv,
                             const uint8_t* mask, const double* old, double low, double high, double dual,
                             PolicyGradientReferenceResult& out) {
  const bool hasOld = old != nullptr;
  size_t kept = 0;
  for (size_t r = 0; r < rows; ++r) kept += mask[r] != 0;
  out.grad.assign(rows * vocab, 0.0);
  double loss = 0.0;
  size_t clippedRows = 0;
  std::vector<double> p(vocab);
  for (size_t r = 0; r < rows; ++r) {
    if (!mask[r]) continue;
    const double* z = logits + r * vocab;
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
      out.grad[r * vocab + v] = dLossDLogp / kept * ((v == static_cast<size_t>(a) ? 1.0 : 0.0) - p[v]);
  }
  out.loss = loss;
  out.clippedFraction = kept ? static_cast<double>(clippedRows) / kept : 0.0;
}

}  // namespace loss
}  // namespace xopd
