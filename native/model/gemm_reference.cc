// The plain GEMM reference (dev addon only): the same product as Gemm with a double accumulator, no
// packing, one thread.
#include "model/model_reference.h"

namespace xopd {
namespace model {

void GemmReference(int M, int N, int K, const float* a, size_t lda, bool aTrans, const float* b, size_t ldb,
                   bool bTrans, float* c, size_t ldc, bool accumulate) {
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = accumulate ? c[m * ldc + n] : 0.0;
      for (int k = 0; k < K; ++k) {
        const double av = aTrans ? a[k * lda + m] : a[m * lda + k];
        const double bv = bTrans ? b[n * ldb + k] : b[k * ldb + n];
        s += av * bv;
      }
      c[m * ldc + n] = static_cast<float>(s);
    }
}

}  // namespace model
}  // namespace xopd
