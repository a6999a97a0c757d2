// Plain float64 reference of the bucketed divergences (DESIGN 6), written to be read: full softmax
// per row, explicit buckets, textbook formulas for the loss and for d loss / d p_b, then the chain
// rule through the softmax. It shares no code with the fused kernels. Tests compare against it
// (dev addon only).
#include <algorithm>
#include <cmath>
#include <vector>

#include "loss/loss_reference.h"

namespace xopd {
namespace loss {

void SparseDivergenceReference(const double* logits, size_t rows, size_t vocab, const int32_t* rowPtr, const int32_t* ids,
                               const int32_t* bucketPtr, const int32_t* members, const double* probs, const double* tail,
                               const uint8_t* mask, const std::string& kind, double beta, double T, double eps,
                               SparseDivergenceReferenceResult& out) {
  // The JSD endpoints are the two KLs exactly (GKD / TRL convention).
  const bool forward = kind == "forward-kl" || (kind == "jsd" && beta == 0.0);
  const bool reverse = kind == "reverse-kl" || (kind == "jsd" && beta == 1.0);

  size_t kept = 0;
  for (size_t r = 0; r < rows; ++r) kept += mask[r] != 0;
  out.grad.assign(rows * vocab, 0.0);
  out.rowLoss.assign(rows, 0.0);
  double loss = 0.0;
  std::vector<double> p(vocab);
  std::vector<int> bucketOf(vocab);
  for (size_t r = 0; r < rows; ++r) {
    if (!mask[r]) continue;
    const double* z = logits + r * vocab;
    // student distribution at temperature T
    double mx = -INFINITY;
    for (size_t v = 0; v < vocab; ++v) mx = std::max(mx, z[v] / T);
    double s = 0.0;
    for (size_t v = 0; v < vocab; ++v) s += std::exp(z[v] / T - mx);
    for (size_t v = 0; v < vocab; ++v) p[v] = std::exp(z[v] / T - mx) / s;

    // buckets 0..n-1 = the row's buckets (their ids listed), bucket n = "other"
    const int n = rowPtr[r + 1] - rowPtr[r];
    std::fill(bucketOf.begin(), bucketOf.end(), n);
    std::vector<double> pb(n + 1, 0.0), qb(n + 1, 0.0);
    for (int k = 0; k < n; ++k) {
      const int32_t b = rowPtr[r] + k;
      if (bucketPtr)
        for (int32_t x = bucketPtr[b]; x < bucketPtr[b + 1]; ++x) bucketOf[members[x]] = k;
      else
        bucketOf[ids[b]] = k;
      qb[k] = probs[b];
    }
    qb[n] = tail[r];
    for (size_t v = 0; v < vocab; ++v) pb[bucketOf[v]] += p[v];  // "other" summed directly
    if (!forward) {  // floor q at eps and renormalise (reverse KL, JSD)
      double sum = 0.0;
      for (double& q : qb) sum += (q = std::max(q, eps));
      for (double& q : qb) q /= sum;
    }

    double L = 0.0;
    std::vector<double> dLdp(n + 1, 0.0);  // d L / d p_b (0 where p_b = 0 never matters: p_u = 0 there)
    for (int b = 0; b <= n; ++b) {
      const double P = pb[b], Q = qb[b];
      if (forward) {
        if (Q > 0) L += Q * std::log(Q / P);
        if (P > 0) dLdp[b] = -Q / P;
      } else if (reverse) {
        if (P > 0) {
          L += P * std::log(P / Q);
          dLdp[b] = std::log(P / Q) + 1.0;
        }
      } else {
        const double M = beta * Q + (1.0 - beta) * P;
        if (Q > 0) L += beta * Q * std::log(Q / M);
        if (P > 0) L += (1.0 - beta) * P * std::log(P / M);
        // d/dP [beta Q log(Q/M) + (1-beta) P log(P/M)] with dM/dP = 1-beta
        if (P > 0) dLdp[b] = -beta * Q * (1.0 - beta) / M + (1.0 - beta) * (std::log(P / M) + 1.0 - P * (1.0 - beta) / M);
      }
    }
    out.rowLoss[r] = L;
    loss += L / kept;
    // chain rule through the softmax: d p_b / d (z_u / T) = p_u (1[u in b] - p_b)
    double gbar = 0.0;
    for (int b = 0; b <= n; ++b) gbar += dLdp[b] * pb[b];
    for (size_t v = 0; v < vocab; ++v)
      out.grad[r * vocab + v] = p[v] * (dLdp[bucketOf[v]] - gbar) / T / kept;
  }
  out.loss = loss;
}

}  // namespace loss
}  // namespace xopd
