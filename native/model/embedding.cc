// Token embedding lookup (the same table is the output layer: tied embeddings).
#include <cstring>

#include "common/threads.h"
#include "model/ops.h"

namespace xopd {
namespace model {

// tokens [N] -> x [N,d]; index -1 (an id outside the model's list, scoring only) embeds as zeros
void EmbeddingForward(const int32_t* tokens, int N, const float* table, int d, float* x) {
  ParallelFor(N, [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t) {
      if (tokens[t] < 0) std::memset(x + t * d, 0, sizeof(float) * d);
      else std::memcpy(x + t * d, table + static_cast<size_t>(tokens[t]) * d, sizeof(float) * d);
    }
  }, 256);
}

// dx [N,d] -> dtable [V,d] (+=). Rows in order on one thread: repeated tokens sum deterministically.
void EmbeddingBackward(const float* dx, const int32_t* tokens, int N, int d, float* dtable) {
  for (int t = 0; t < N; ++t) {
    if (tokens[t] < 0) continue;
    float* row = dtable + static_cast<size_t>(tokens[t]) * d;
    const float* g = dx + static_cast<size_t>(t) * d;
    for (int j = 0; j < d; ++j) row[j] += g[j];
  }
}

}  // namespace model
}  // namespace xopd
