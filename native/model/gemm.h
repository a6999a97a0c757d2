// C[M,N] (+)= A[M,K] · B[K,N] for the decoder's matrices, with B packed into 16-column panels.
//
// Every output element is one lane of one register that accumulates k = 0..K-1 in order, whatever
// the tiling, the row count or the thread count. So results do not depend on XOPD_THREADS, and a
// row computed alone (KV-cache decoding, M = 1) is bit-identical to the same row inside a batch.
#pragma once
#include <cstddef>
#include <vector>

namespace xopd {
namespace model {

constexpr int kPanel = 16;  // columns per packed panel of B (two AVX2 registers)

// A read-only view of B in panels: panel p starts at data + p*stride and holds B(k, 16p + j) at
// [k*16 + j] for k < K, zero for columns past N. stride >= K*16 lets a KV cache keep room to grow.
struct Panels {
  const float* data = nullptr;
  int K = 0, N = 0;
  size_t stride = 0;
  int panels() const { return (N + kPanel - 1) / kPanel; }
};

struct PackedB {
  int K = 0, N = 0;
  std::vector<float> data;  // panel p: data[p*K*16 + k*16 + j] = B(k, 16p + j), zero past N
  int panels() const { return (N + kPanel - 1) / kPanel; }
  Panels view() const { return Panels{data.data(), K, N, static_cast<size_t>(K) * kPanel}; }
};

// B(k, n) = trans ? b[n*ldb + k] : b[k*ldb + n]
void PackB(const float* b, size_t ldb, bool trans, int K, int N, PackedB& out);

// C(m, n) = (accumulate ? C(m, n) : 0) + Σ_k A(m, k) B(k, n), with
// A(m, k) = aTrans ? a[k*lda + m] : a[m*lda + k] and C(m, n) = c[m*ldc + n].
// Threads over output tiles (nested calls run inline).
void Gemm(int M, const float* a, size_t lda, bool aTrans, const Panels& b, float* c, size_t ldc, bool accumulate);
inline void Gemm(int M, const float* a, size_t lda, bool aTrans, const PackedB& b, float* c, size_t ldc, bool accumulate) {
  Gemm(M, a, lda, aTrans, b.view(), c, ldc, accumulate);
}

// Which inner kernel this CPU runs: "avx2-fma" or "generic".
const char* GemmKernelName();

}  // namespace model
}  // namespace xopd
