// Generated from test/helpers/tolerances.ts (tolerancesHeader): do not edit; test/cuda-emulation.test.ts
// checks it matches (XOPD_WRITE_TOLERANCES=1 npx vitest run test/cuda-emulation.test.ts rewrites it).
#pragma once

namespace xopd {
namespace gpu_check {

struct Tolerance {
  double rel, abs, absOfMax;
  const char* why;
};

constexpr Tolerance float32Rounding{0, 5e-7, 0, "a value in [0, 1] computed in float64 and returned as float32: rounding only (2^-24 relative)"};
constexpr Tolerance divergenceLoss{0.000002, 0.000002, 0, "mean of row losses summed in float64 from float32 exps accurate to 4 ulp (2.4e-7 relative)"};
constexpr Tolerance divergenceLossWide{0.00001, 0.00001, 0, "as divergenceLoss over 151939-token rows: float32 block sums of 2048 exps before float64"};
constexpr Tolerance policyGradientLoss{0.00001, 0.00001, 0, "-A log pi(a) with log pi from a float32 max and an exp polynomial; |A| up to 2 scales the ~2e-6 error of log pi"};
constexpr Tolerance lossGrad{0.00002, 0, 0.000002, "float32 exp (<= 4 ulp) times a float64 coefficient, stored in float32; support entries whose two terms cancel need the floor"};
constexpr Tolerance bf16Loss{0.00001, 0.00001, 0, "bf16 logits are exact in float32; the loss itself is accumulated as for float32"};
constexpr Tolerance bf16Grad{0.00390625, 0, 0.000002, "bf16 stores 8 significant bits: half an ulp is 2^-9 relative, doubled for the float32 error before rounding"};
constexpr Tolerance ppoRatio{0.000025, 0.000005, 0, "a loss of -ratio * A with ratio = exp(log pi - old) and old rounded to float32: 2^-24 of |old| in the exponent"};
constexpr Tolerance cudaLoss{0.00001, 0.00001, 0, "CUDA expf (2 ulp) in per-thread float64 sums merged across a block, vs float64"};
constexpr Tolerance cudaVsCpuLoss{0.00001, 0.00001, 0, "CUDA expf and the CPU polynomial differ by a few ulp; row sums run in a different order"};
constexpr Tolerance cudaVsCpuGrad{0.00003, 0, 0.000003, "two float32 paths, each within lossGrad of float64"};
constexpr Tolerance directVsReference{1e-12, 1e-12, 0, "two float64 evaluations of the same formula in a different order"};
constexpr Tolerance zeroAtEquality{0, 2e-7, 0, "targets equal to the student's own probabilities rounded to float32: the divergence is second order in that rounding"};
constexpr Tolerance tinyOtherLoss{0, 1e-9, 0, "p_other ~ 1e-9 summed directly: the loss is a float64 sum of terms no larger than 1e-8"};
constexpr Tolerance tinyOtherGrad{0, 1e-12, 0, "gradient entries of ~1e-9 from float32 exps: 2e-5 relative of them"};
constexpr Tolerance float64VsFd{0, 1e-8, 0, "central differences of a float64 loss: truncation h^2 f'''/6 ~ 1e-12, rounding 1e-16 |f|/h ~ 1e-9; no PPO clip kink lies within h"};
constexpr Tolerance float64VsFdRel{0.000001, 1e-8, 0, "as float64VsFd, for ops whose derivatives reach 10-100 (attention, products of activations)"};
constexpr Tolerance float32KernelVsFd{0, 0.0003, 0, "differences of the fused loss: its 2.4e-7 relative rounding / h ~ 1e-5, truncation h^2 f'''/6 ~ 1e-4 at logit scale 4"};
constexpr Tolerance modelVsFd{0.002, 0.00002, 0, "float32 backward of the whole decoder (a few GEMMs deep, K up to 256) vs float64 differences: ~1e-4 relative, ten-fold margin"};
constexpr Tolerance projectionProbs{0.000001, 1e-9, 0, "each entry is a float64 product of a few teacher probabilities, stored as float32"};
constexpr Tolerance projectionTail{0, 0.000001, 0, "1 - sum of up to (K + 1) * span float64 terms, stored as float32"};
constexpr Tolerance projectionRowSum{0, 0.00001, 0, "probs + tail summed in float64 from float32 entries: up to a few hundred roundings of 6e-8"};
constexpr Tolerance projectionRowMass{0, 0.000001, 0, "a row's float32 probs (renormalised to at most 1 in float64) summed again: rounding only"};
constexpr Tolerance projectionLogRatio{0.000002, 0.000002, 0, "log of a float32 projected mass against the teacher's float32 logprob"};
constexpr Tolerance gemmPerK{0, 0.000002, 0, "float32 accumulation of K products of magnitude <= 1: the bound grows with K (multiply abs by K, plus 1e-6)"};
constexpr Tolerance modelForward{0.00001, 0.00001, 0, "float32 forward of the whole decoder (GEMMs, norms, softmax) vs float64: 1e-6 per layer, a few layers"};
constexpr Tolerance crossEntropy{0, 5e-7, 0, "log-sum-exp in float64 over float32 logits; gradient entries in [0, 1] stored as float32"};
constexpr Tolerance logprob{0, 0.000005, 0, "a float32 logit minus a float64 log-sum-exp, stored as float32 (logprobs down to -20)"};
constexpr Tolerance rowOp{0.000002, 0.000001, 0, "row-local float32 op (RMSNorm, rotary, SwiGLU, GELU, embedding): a few float32 roundings per output, sums in float64"};
constexpr Tolerance rowOpGrad{0.00001, 0, 0.000001, "its float32 backward: products of a few rounded terms; the floor covers entries whose terms cancel"};
constexpr Tolerance attention{0.00001, 0, 0.000002, "two float32 GEMMs (K = head dim, then T) around a softmax with a float64 sum"};
constexpr Tolerance attentionGrad{0.00005, 0, 0.000005, "four float32 GEMMs and the softmax backward, whose row dot product cancels"};
constexpr Tolerance adamw{0.000002, 0, 0.000001, "float32 moments and update from the same formula: a few roundings each; the floor covers moments whose two terms cancel"};
constexpr Tolerance learningRate{1e-12, 0, 0, "the schedule is computed in float64 on both sides"};
constexpr Tolerance gradNorm{1e-12, 0, 0, "float64 sum of squares of float32 values, in a different order"};

}  // namespace gpu_check
}  // namespace xopd
