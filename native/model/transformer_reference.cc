// A plain float64 forward of the whole decoder (model_reference.h), dev addon only.
#include "model/model_reference.h"

#include <algorithm>
#include <cmath>

namespace xopd {
namespace model {

namespace {
using Mat = std::vector<std::vector<double>>;

Mat RmsNorm(const Mat& x, const double* w, double eps) {
  Mat y = x;
  for (auto& row : y) {
    double ss = 0;
    for (double v : row) ss += v * v;
    const double r = 1.0 / std::sqrt(ss / row.size() + eps);
    for (size_t j = 0; j < row.size(); ++j) row[j] = row[j] * r * w[j];
  }
  return y;
}

// y = x Wᵀ with W [out, in] row-major
Mat Linear(const Mat& x, const double* W, int out, int in) {
  Mat y(x.size(), std::vector<double>(out, 0.0));
  for (size_t t = 0; t < x.size(); ++t)
    for (int o = 0; o < out; ++o) {
      double s = 0;
      for (int i = 0; i < in; ++i) s += x[t][i] * W[static_cast<size_t>(o) * in + i];
      y[t][o] = s;
    }
  return y;
}
}  // namespace

void ReferenceForward(const Config& c, const double* P, const int32_t* tokens, const int32_t* offsets, int B,
                      const int32_t* outStart, std::vector<double>& logits) {
  const Layout lay = MakeLayout(c);
  const int d = c.dim, H = c.heads, hd = c.headDim(), h = c.hidden, V = c.vocab;
  logits.clear();
  for (int s = 0; s < B; ++s) {
    const int T = offsets[s + 1] - offsets[s];
    const int32_t* tok = tokens + offsets[s];
    Mat x(T, std::vector<double>(d));
    for (int t = 0; t < T; ++t)
      for (int j = 0; j < d; ++j) x[t][j] = tok[t] < 0 ? 0.0 : P[lay.embed + static_cast<size_t>(tok[t]) * d + j];
    for (int l = 0; l < c.layers; ++l) {
      const LayerOffsets& o = lay.layer[l];
      const Mat n1 = RmsNorm(x, P + o.attnNorm, c.normEps);
      Mat q = Linear(n1, P + o.wqkv, d, d);
      Mat k = Linear(n1, P + o.wqkv + static_cast<size_t>(d) * d, d, d);
      const Mat v = Linear(n1, P + o.wqkv + 2 * static_cast<size_t>(d) * d, d, d);
      for (int t = 0; t < T; ++t)
        for (int hh = 0; hh < H; ++hh)
          for (int i = 0; i < hd / 2; ++i) {
            const double a = t * std::pow(static_cast<double>(c.ropeTheta), -2.0 * i / hd);
            for (Mat* m : {&q, &k}) {
              double& x1 = (*m)[t][hh * hd + i];
              double& x2 = (*m)[t][hh * hd + i + hd / 2];
              const double r1 = x1 * std::cos(a) - x2 * std::sin(a), r2 = x2 * std::cos(a) + x1 * std::sin(a);
              x1 = r1;
              x2 = r2;
            }
          }
      Mat att(T, std::vector<double>(d, 0.0));
      for (int hh = 0; hh < H; ++hh)
        for (int t = 0; t < T; ++t) {
          std::vector<double> sc(t + 1);
          double mx = -1e300;
          for (int u = 0; u <= t; ++u) {
            double dot = 0;
            for (int j = 0; j < hd; ++j) dot += q[t][hh * hd + j] * k[u][hh * hd + j];
            sc[u] = dot / std::sqrt(static_cast<double>(hd));
            mx = std::max(mx, sc[u]);
          }
          double sum = 0;
          for (double& e : sc) sum += (e = std::exp(e - mx));
          for (int u = 0; u <= t; ++u)
            for (int j = 0; j < hd; ++j) att[t][hh * hd + j] += sc[u] / sum * v[u][hh * hd + j];
        }
      const Mat ao = Linear(att, P + o.wo, d, d);
      for (int t = 0; t < T; ++t)
        for (int j = 0; j < d; ++j) x[t][j] += ao[t][j];
      const Mat n2 = RmsNorm(x, P + o.mlpNorm, c.normEps);
      Mat act(T, std::vector<double>(h));
      if (c.swiglu) {
        const Mat gate = Linear(n2, P + o.wgu, h, d);
        const Mat up = Linear(n2, P + o.wgu + static_cast<size_t>(h) * d, h, d);
        for (int t = 0; t < T; ++t)
          for (int j = 0; j < h; ++j) act[t][j] = gate[t][j] / (1.0 + std::exp(-gate[t][j])) * up[t][j];
      } else {
        const Mat u = Linear(n2, P + o.wgu, h, d);
        for (int t = 0; t < T; ++t)
          for (int j = 0; j < h; ++j) {
            const double z = u[t][j];
            act[t][j] = 0.5 * z * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (z + 0.044715 * z * z * z)));
          }
      }
      const Mat mo = Linear(act, P + o.wdown, d, h);
      for (int t = 0; t < T; ++t)
        for (int j = 0; j < d; ++j) x[t][j] += mo[t][j];
    }
    const Mat nf = RmsNorm(x, P + lay.finalNorm, c.normEps);
    for (int t = outStart[s]; t < T; ++t)
      for (int vv = 0; vv < V; ++vv) {
        double dot = 0;
        for (int j = 0; j < d; ++j) dot += nf[t][j] * P[lay.embed + static_cast<size_t>(vv) * d + j];
        logits.push_back(dot);
      }
  }
}

}  // namespace model
}  // namespace xopd
