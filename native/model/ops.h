// The decoder's layers, each forward beside its backward (one op per file, llm.c style).
// Row-wise ops: a row is one token; N rows, width d. Backward functions ACCUMULATE (+=) into
// parameter gradients and WRITE input gradients unless stated otherwise.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/gemm.h"

namespace xopd {
namespace model {

// ---- rmsnorm.cc: y = x / sqrt(mean(x²) + eps) * w ----
// x,y [N,d], w [d], rstd [N]
void RmsNormForward(const float* x, const float* w, int N, int d, float eps, float* y, float* rstd);
// dy,x [N,d], rstd [N] -> dx [N,d] (+= when accumulate), dw [d] (+=)
void RmsNormBackward(const float* dy, const float* x, const float* w, const float* rstd, int N, int d, float* dx,
                     bool accumulate, float* dw);

// ---- rope.cc: rotary positions on the q and k parts of qkv rows (rotate-half pairs (i, i + hd/2)) ----
struct RopeTable {
  int maxSeq = 0, half = 0;
  std::vector<float> cos, sin;  // [maxSeq, hd/2]
  void Build(int maxSeq, int headDim, float theta);
};
// qkv [N, 3d]: rotates q (cols [0,d)) and k (cols [d,2d)) of row t by positions[t], in place
void RopeForward(float* qkv, int N, int d, int heads, const int* positions, const RopeTable& t);
// dqkv [N, 3d]: the inverse rotation of the gradient (the rotation is orthogonal), in place
void RopeBackward(float* dqkv, int N, int d, int heads, const int* positions, const RopeTable& t);

// ---- activation.cc: the MLP's nonlinearity ----
// SwiGLU: gu [N, 2h] = (gate | up) -> act [N,h] = silu(gate) * up
void SwiGluForward(const float* gu, int N, int h, float* act);
// dact [N,h] -> dgu [N,2h] (written)
void SwiGluBackward(const float* dact, const float* gu, int N, int h, float* dgu);
// GELU (tanh approximation): u [N,h] -> act [N,h]
void GeluForward(const float* u, int N, int h, float* act);
void GeluBackward(const float* dact, const float* u, int N, int h, float* du);

// ---- attention.cc: causal softmax attention, one (sequence, head) per call ----
// The caller threads over (sequence, head) pairs; the GEMMs inside run inline.
struct AttentionScratch {
  PackedB pa, pb;
  std::vector<float> dp;
};
// qkv [T, 3d] (q | k | v, rotary applied) -> p [T, T] this head's probabilities (0 above the
// diagonal), out [T, d] (row stride ldo; this head's hd columns written)
void AttentionForward(const float* qkv, int T, int d, int heads, int head, float* p, float* out, size_t ldo,
                      AttentionScratch& s);
// dout [T, d] (stride ldo), qkv, p -> dqkv [T, 3d] (this head's q, k, v columns written)
void AttentionBackward(const float* dout, size_t ldo, const float* qkv, const float* p, int T, int d, int heads,
                       int head, float* dqkv, AttentionScratch& s);
// The KV cache of one (sequence, layer), all heads, kept in the GEMM's panel layout so that
// decoding packs nothing: per head, K as panels of 16 positions ([cap/16][hd][16], i.e. Kᵀ) and
// V as panels of 16 head columns ([hd/16][cap][16]). Unwritten positions read as zeros.
struct KvCache {
  int cap = 0, heads = 0, hd = 0;
  std::vector<float> k, v;
  void Init(int capacity, int nHeads, int headDim);
  void Put(int t, const float* kRow, const float* vRow);  // rows of d = heads * hd
  Panels KT(int head, int len) const;                     // B = Kᵀ [hd, len]
  Panels V(int head, int len) const;                      // B = V [len, hd]
};
// One new query against the cache (len rows, the query's own included): q [d] -> out [d] (this
// head's columns). Bit-identical to row len-1 of AttentionForward on the same values.
void AttentionDecode(const float* q, const KvCache& cache, int len, int d, int heads, int head, float* out,
                     AttentionScratch& s);
// Shared by both paths: p[0..len) = softmax(scale * p[0..len)).
void ScaledSoftmaxRow(float* p, int len, float scale);

// ---- embedding.cc ----
// tokens [N] (index -1: an id outside the model's list, embedded as zeros) -> x [N,d]
void EmbeddingForward(const int32_t* tokens, int N, const float* table, int d, float* x);
void EmbeddingBackward(const float* dx, const int32_t* tokens, int N, int d, float* dtable);

// ---- softmax.cc: rows of logits ----
double LogSumExp(const float* z, int n);
// Mean cross-entropy over rows with target >= 0; writes d loss / d logits (0 on ignored rows).
double CrossEntropy(const float* logits, const int32_t* targets, int R, int V, float* dlogits);
// Realised logprob (floor when the target is -1) and the top-k (index, logprob), most likely first,
// ties to the lower index.
void LogProbsTopK(const float* logits, const int32_t* targets, int R, int V, int k, float floor, float* lp,
                  int32_t* topIdx, float* topLp);

// ---- adamw.cc ----
struct OptimConfig {
  double lr = 1e-3, minLr = 1e-4;
  int warmup = 0, totalSteps = 0;  // totalSteps 0: constant lr after warm-up
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0.0, clip = 1.0;  // clip 0: off
};
double LearningRate(const OptimConfig& c, int step);
// Global L2 norm of g (double, order fixed: independent of threads).
double GradNorm(const float* g, size_t n);
// One AdamW step (step counts from 1) on p with gradient g * gscale; the decoupled weight decay
// applies where decay[i] != 0 (matrices, not norm gains).
void AdamWUpdate(float* p, const float* g, float* m, float* v, size_t n, const uint8_t* decay, const OptimConfig& c,
                 double lr, int step, float gscale);

// ---- sampler.cc ----
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t Next();
  double Uniform();  // [0, 1), 53 bits
};
// Samples an index from softmax(logits / temperature) restricted to the top-p nucleus
// (temperature 0: argmax, lowest index on ties). Returns the index; *logprob = log softmax(logits)
// at it, i.e. the model's own distribution (temperature 1, no top-p), the number forward gives.
int SampleRow(const float* logits, int V, float temperature, float topP, Rng& rng, std::vector<std::pair<float, int>>& scratch,
              double* logprob);

}  // namespace model
}  // namespace xopd
