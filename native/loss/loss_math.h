// Per-row scalar math of the two fused losses, shared by the CPU kernels and the CUDA kernels so
// each formula exists once: the bucket terms of the divergences (DESIGN 6) and the policy-gradient
// coefficient with PPO ratio clipping (DESIGN 4). Everything here is float64.
#pragma once
#include <cmath>
#include <cstdint>

#include "common/cuda_macros.h"

namespace xopd {
namespace loss {

enum DivergenceKind : int { kForwardKL = 0, kReverseKL = 1, kJSD = 2 };

struct DivergenceParams {
  int kind = kForwardKL;  // JSD with beta 0 or 1 is resolved to forward / reverse KL before use
  double beta = 0.5;
  double invTemp = 1.0;
  double epsilon = 1e-8;  // floor of q for reverse KL and JSD
};

// JSD_beta at its endpoints is exactly forward KL (beta 0) and reverse KL (beta 1), as in GKD/TRL.
XOPD_HD int ResolveKind(int kind, double beta) {
  if (kind == kJSD && beta == 0.0) return kForwardKL;
  if (kind == kJSD && beta == 1.0) return kReverseKL;
  return kind;
}

// Floors a bucket of q at epsilon for reverse KL and JSD (renormalised by the caller's sum).
XOPD_HD double FlooredQ(int kind, double q, double epsilon) {
  return kind == kForwardKL ? q : (q > epsilon ? q : epsilon);
}

// log p for the loss value: a bucket whose p underflowed contributes a large finite term, not inf.
constexpr double kTinyP = 1e-300;

// One bucket b with student probability p and target probability q (already floored and
// renormalised where the divergence asks for it). Returns the bucket's loss term and
// h = p * d loss / d p_b, so that d loss / d z_u = (p_u / p_b) * h_b - p_u * sum_b h_b
// (times 1/temperature): writing p*g avoids 0 * inf where a bucket has p = 0.
struct BucketTerm {
  double loss;
  double h;
};

XOPD_HD BucketTerm Bucket(int kind, double beta, double p, double q) {
  BucketTerm t{0.0, 0.0};
  if (kind == kForwardKL) {
    // KL(q||p) = sum q log(q/p); d/dp = -q/p
    if (q > 0.0) t.loss = q * (log(q) - log(p > kTinyP ? p : kTinyP));
    t.h = -q;
  } else if (kind == kReverseKL) {
    // KL(p||q) = sum p log(p/q); d/dp = log(p/q) + 1
    if (p > 0.0) {
      double lr = log(p) - log(q);
      t.loss = p * lr;
      t.h = p * (lr + 1.0);
    }
  } else {
    // m = beta q + (1-beta) p; JSD = beta KL(q||m) + (1-beta) KL(p||m); d/dp = (1-beta) log(p/m)
    double m = beta * q + (1.0 - beta) * p;
    if (q > 0.0) t.loss += beta * q * (log(q) - log(m));
    if (p > 0.0) {
      double lr = log(p) - log(m);
      t.loss += (1.0 - beta) * p * lr;
      t.h = (1.0 - beta) * p * lr;
    }
  }
  return t;
}

// ---- policy gradient (DESIGN 4) ----

struct PgParams {
  int hasOld = 0;      // oldLogprobs given: PPO ratio objective with clipping
  double low = 0.2;    // ratio clipped to [1 - low, 1 + high]
  double high = 0.28;
  double dual = 10.0;  // dual clip for negative advantages (0 = off)
};

struct PgTerm {
  double loss;     // this row's loss before the 1/N of the mean
  double dlogp;    // d loss / d log pi(a)
  int clipped;     // the clipped branch is active (no gradient from this row)
};

// Without oldLogprobs: loss = -A log pi(a). With them: ratio r = exp(log pi(a) - old),
// objective min(r A, clip(r, 1-low, 1+high) A), and for A < 0 at least dual * A (dual clip);
// loss = -objective; the gradient flows only where the unclipped term r A is the one taken.
XOPD_HD PgTerm PolicyGradientTerm(double logp, double adv, double old, const PgParams& P) {
  PgTerm t{0.0, 0.0, 0};
  if (!P.hasOld) {
    t.loss = -adv * logp;
    t.dlogp = -adv;
    return t;
  }
  double r = exp(logp - old);
  double unclipped = r * adv;
  double lo = 1.0 - P.low, hi = 1.0 + P.high;
  double rc = r < lo ? lo : (r > hi ? hi : r);
  double clippedObj = rc * adv;
  double obj = unclipped;
  int clipped = 0;
  if (clippedObj < unclipped) {
    obj = clippedObj;
    clipped = 1;
  }
  if (P.dual > 0.0 && adv < 0.0 && P.dual * adv > obj) {
    obj = P.dual * adv;
    clipped = 1;
  }
  t.loss = -obj;
  t.dlogp = clipped ? 0.0 : -unclipped;
  t.clipped = clipped;
  return t;
}

// bf16 <-> f32, round to nearest even (finite values only: callers reject NaN/Inf first).
XOPD_HD float Bf16ToF32(uint16_t h) {
  union {
    uint32_t u;
    float f;
  } v;
  v.u = static_cast<uint32_t>(h) << 16;
  return v.f;
}

XOPD_HD uint16_t F32ToBf16(float f) {
  union {
    uint32_t u;
    float f;
  } v;
  v.f = f;
  uint32_t rounding = 0x7FFFu + ((v.u >> 16) & 1u);
  return static_cast<uint16_t>((v.u + rounding) >> 16);
}

}  // namespace loss
}  // namespace xopd
