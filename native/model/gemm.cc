// Packed-panel GEMM: a 6x16 register-tile micro-kernel (AVX2+FMA when the CPU has it, chosen at run
// time so the addon still loads on older x86 and other ISAs), blocked for L1/L2, threaded over tiles.
#include "model/gemm.h"

#include <algorithm>
#include <cstring>

#include "common/threads.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define XOPD_HAVE_AVX2_PATH 1
#endif

namespace xopd {
namespace model {
namespace {

constexpr int kRows = 6;        // micro-tile rows (12 accumulators + 2 B loads + 1 broadcast = 15 ymm)
constexpr int kChunkRows = 48;  // rows of A kept hot in L1/L2 while all panels of B stream past

// A(m, k) = a[m*am + k*ak]: (am, ak) = (lda, 1) for A, (1, lda) for A transposed.
struct ASrc {
  const float* a;
  size_t am, ak;
};

template <int MR>
inline void MicroGeneric(int K, ASrc A, int m0, const float* bp, float* c, size_t ldc, int ncols, bool accumulate) {
  float acc[MR][kPanel] = {};
  const float* a = A.a + m0 * A.am;
  for (int k = 0; k < K; ++k, bp += kPanel) {
    const float* ak = a + k * A.ak;
    for (int i = 0; i < MR; ++i) {
      const float av = ak[i * A.am];
      for (int j = 0; j < kPanel; ++j) acc[i][j] += av * bp[j];
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + (m0 + i) * ldc;
    for (int j = 0; j < ncols; ++j) ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
  }
}

#ifdef XOPD_HAVE_AVX2_PATH
template <int MR>
__attribute__((target("avx2,fma"), always_inline)) inline void MicroAvx2(int K, ASrc A, int m0, const float* bp,
                                                                         float* c, size_t ldc, int ncols,
                                                                         bool accumulate) {
  // Fully unrolled over rows so the 2*MR accumulators live in registers (no spills in the k loop).
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm256_setzero_ps();
  const float* a = A.a + m0 * A.am;
  const size_t am = A.am, ak = A.ak;
  for (int k = 0; k < K; ++k, bp += kPanel, a += ak) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * am);
      c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
    }
  }
  if (ncols == kPanel) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* ci = c + (m0 + i) * ldc;
      const __m256 lo = accumulate ? _mm256_add_ps(c0[i], _mm256_loadu_ps(ci)) : c0[i];
      const __m256 hi = accumulate ? _mm256_add_ps(c1[i], _mm256_loadu_ps(ci + 8)) : c1[i];
      _mm256_storeu_ps(ci, lo);
      _mm256_storeu_ps(ci + 8, hi);
    }
  } else {
    alignas(32) float tmp[MR][kPanel];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_store_ps(tmp[i], c0[i]);
      _mm256_store_ps(tmp[i] + 8, c1[i]);
    }
    for (int i = 0; i < MR; ++i) {
      float* ci = c + (m0 + i) * ldc;
      for (int j = 0; j < ncols; ++j) ci[j] = accumulate ? ci[j] + tmp[i][j] : tmp[i][j];
    }
  }
}

// One unit of work: rows [m0, m1) against panels [p0, p1).
__attribute__((target("avx2,fma"))) void UnitAvx2(int m0, int m1, int p0, int p1, ASrc A, const Panels& b, float* c,
                                                   size_t ldc, bool accumulate) {
  for (int p = p0; p < p1; ++p) {
    const float* bp = b.data + static_cast<size_t>(p) * b.stride;
    const int n0 = p * kPanel, ncols = std::min(kPanel, b.N - n0);
    float* cp = c + n0;
    int m = m0;
    for (; m + kRows <= m1; m += kRows) MicroAvx2<kRows>(b.K, A, m, bp, cp, ldc, ncols, accumulate);
    switch (m1 - m) {
      case 5: MicroAvx2<5>(b.K, A, m, bp, cp, ldc, ncols, accumulate); break;
      case 4: MicroAvx2<4>(b.K, A, m, bp, cp, ldc, ncols, accumulate); break;
      case 3: MicroAvx2<3>(b.K, A, m, bp, cp, ldc, ncols, accumulate); break;
      case 2: MicroAvx2<2>(b.K, A, m, bp, cp, ldc, ncols, accumulate); break;
      case 1: MicroAvx2<1>(b.K, A, m, bp, cp, ldc, ncols, accumulate); break;
      default: break;
    }
  }
}

bool CpuHasAvx2Fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

void UnitGeneric(int m0, int m1, int p0, int p1, ASrc A, const Panels& b, float* c, size_t ldc, bool accumulate) {
  for (int p = p0; p < p1; ++p) {
    const float* bp = b.data + static_cast<size_t>(p) * b.stride;
    const int n0 = p * kPanel, ncols = std::min(kPanel, b.N - n0);
    float* cp = c + n0;
    int m = m0;
    for (; m + kRows <= m1; m += kRows) MicroGeneric<kRows>(b.K, A, m, bp, cp, ldc, ncols, accumulate);
    switch (m1 - m) {
      case 5: MicroGeneric<5>(b.K, A, m, bp, cp, ldc, ncols, accumulate); break;
      case 4: MicroGeneric<4>(b.K, A, m, bp, cp, ldc, ncols, accumulate); break;
      case 3: MicroGeneric<3>(b.K, A, m, bp, cp, ldc, ncols, accumulate); break;
      case 2: MicroGeneric<2>(b.K, A, m, bp, cp, ldc, ncols, accumulate); break;
      case 1: MicroGeneric<1>(b.K, A, m, bp, cp, ldc, ncols, accumulate); break;
      default: break;
    }
  }
}

}  // namespace

const char* GemmKernelName() {
#ifdef XOPD_HAVE_AVX2_PATH
  if (CpuHasAvx2Fma()) return "avx2-fma";
#endif
  return "generic";
}

void PackB(const float* b, size_t ldb, bool trans, int K, int N, PackedB& out) {
  out.K = K;
  out.N = N;
  const int panels = out.panels();
  out.data.resize(static_cast<size_t>(panels) * K * kPanel);  // every entry is written below
  for (int p = 0; p < panels; ++p) {
    float* dst = out.data.data() + static_cast<size_t>(p) * K * kPanel;
    const int n0 = p * kPanel, nc = std::min(kPanel, N - n0);
    if (!trans) {
      for (int k = 0; k < K; ++k) {
        std::memcpy(dst + k * kPanel, b + k * ldb + n0, sizeof(float) * nc);
        if (nc < kPanel) std::fill(dst + k * kPanel + nc, dst + (k + 1) * kPanel, 0.f);
      }
    } else {
      if (nc < kPanel) std::fill(dst, dst + static_cast<size_t>(K) * kPanel, 0.f);
      for (int j = 0; j < nc; ++j) {
        const float* src = b + (n0 + j) * ldb;
        for (int k = 0; k < K; ++k) dst[k * kPanel + j] = src[k];
      }
    }
  }
}

void Gemm(int M, const float* a, size_t lda, bool aTrans, const Panels& b, float* c, size_t ldc, bool accumulate) {
  if (M <= 0 || b.N <= 0) return;
  if (b.K == 0) {
    if (!accumulate)
      for (int m = 0; m < M; ++m) std::fill(c + m * ldc, c + m * ldc + b.N, 0.f);
    return;
  }
  const ASrc A{a, aTrans ? 1 : lda, aTrans ? lda : 1};
  const int chunks = (M + kChunkRows - 1) / kChunkRows;
  const int panels = b.panels();
  // Split the panels too when there are few row chunks (decoding: M is the batch of live sequences).
  const int want = 4 * ThreadCount();
  const int groups = std::max(1, std::min(panels, (want + chunks - 1) / chunks));
  const size_t units = static_cast<size_t>(chunks) * groups;
  const double unitFlops = 2.0 * std::min(M, kChunkRows) * (static_cast<double>(panels) / groups) * kPanel * b.K;
  const size_t minUnits = static_cast<size_t>(std::max(1.0, 2e5 / unitFlops));
#ifdef XOPD_HAVE_AVX2_PATH
  const bool avx2 = CpuHasAvx2Fma();
#endif
  ParallelFor(
      units,
      [&](size_t begin, size_t end, int) {
        for (size_t u = begin; u < end; ++u) {
          const int ch = static_cast<int>(u / groups), g = static_cast<int>(u % groups);
          const int m0 = ch * kChunkRows, m1 = std::min(M, m0 + kChunkRows);
          const int p0 = static_cast<int>(static_cast<long>(panels) * g / groups);
          const int p1 = static_cast<int>(static_cast<long>(panels) * (g + 1) / groups);
#ifdef XOPD_HAVE_AVX2_PATH
          if (avx2) {
            UnitAvx2(m0, m1, p0, p1, A, b, c, ldc, accumulate);
            continue;
          }
#endif
          UnitGeneric(m0, m1, p0, p1, A, b, c, ldc, accumulate);
        }
      },
      minUnits);
}

}  // namespace model
}  // namespace xopd
