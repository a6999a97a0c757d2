// exp(x) in float64 with the same bits on the host and on a CUDA device: the span projection's
// probabilities must not depend on where a row ran (glibc's exp and CUDA's libdevice exp may
// differ by an ulp). Every step is an operation IEEE 754 rounds exactly the same everywhere
// (rint, fma, scalbn), so no compiler contraction or library can change a bit:
//   x = n ln2 + r, |r| <= ln2 / 2     n = rint(x / ln2), r by two fmas (ln2 split in hi + lo)
//   e^r = sum_{k <= 13} r^k / k!      Horner in fma; the truncation r^14/14! < 4e-18 of e^r
//   e^x = scalbn(e^r, n)              exact, or one rounding into the subnormals
// Accurate to about 1 ulp (glibc's exp is within 1 ulp too; they may differ in the last bit).
#pragma once
#include <cmath>

#include "common/cuda_macros.h"

namespace xopd {

XOPD_HD double PortableExp(double x) {
  if (x != x) return x;                    // NaN
  if (x > 709.782712893384) return INFINITY;
  if (x < -745.1332191019412) return 0.0;  // below half the smallest subnormal
  const double kLog2e = 1.4426950408889634;
  const double kLn2Hi = 6.93147180369123816490e-01;  // ln 2 with its low 32 bits zero
  const double kLn2Lo = 1.90821492927058770002e-10;  // ln 2 - kLn2Hi
  const double n = rint(x * kLog2e);
  double r = fma(-n, kLn2Hi, x);
  r = fma(-n, kLn2Lo, r);
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = fma(p, r, 1.0 / 479001600.0);
  p = fma(p, r, 1.0 / 39916800.0);
  p = fma(p, r, 1.0 / 3628800.0);
  p = fma(p, r, 1.0 / 362880.0);
  p = fma(p, r, 1.0 / 40320.0);
  p = fma(p, r, 1.0 / 5040.0);
  p = fma(p, r, 1.0 / 720.0);
  p = fma(p, r, 1.0 / 120.0);
  p = fma(p, r, 1.0 / 24.0);
  p = fma(p, r, 1.0 / 6.0);
  p = fma(p, r, 0.5);
  p = fma(p, r, 1.0);
  p = fma(p, r, 1.0);
  return scalbn(p, static_cast<int>(n));
}

}  // namespace xopd
