// The CUDA self-check behind device 'auto' (loss.h CudaSelfCheck): the CUDA path must reproduce
// the CPU path on this machine before 'auto' hands it a single real batch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/cuda_info.h"
#include "common/errors.h"
#include "loss/loss.h"

namespace xopd {
namespace loss {
namespace {

// Agreement of two float32 paths, each within float rounding of float64 (the CUDA-vs-CPU rows of
// test/helpers/tolerances.ts: cudaVsCpuLoss, cudaVsCpuGrad).
constexpr double kLossRel = 1e-5, kLossAbs = 1e-5, kGradRel = 3e-5, kGradAbsOfMax = 3e-6;

std::string Compare(const char* what, double lossCuda, double lossCpu, const std::vector<float>& gCuda, const std::vector<float>& gCpu) {
  if (!(std::fabs(lossCuda - lossCpu) <= kLossRel * std::fabs(lossCpu) + kLossAbs))
    return std::string(what) + ": loss " + std::to_string(lossCuda) + " on CUDA, " + std::to_string(lossCpu) + " on the CPU";
  double maxAbs = 0;
  for (float g : gCpu) maxAbs = std::max(maxAbs, static_cast<double>(std::fabs(g)));
  for (size_t i = 0; i < gCpu.size(); ++i)
    if (!(std::fabs(gCuda[i] - gCpu[i]) <= kGradRel * std::fabs(gCpu[i]) + kGradAbsOfMax * maxAbs))
      return std::string(what) + ": gradient entry " + std::to_string(i) + " is " + std::to_string(gCuda[i]) + " on CUDA, " +
             std::to_string(gCpu[i]) + " on the CPU";
  return "";
}

// Deterministic logits and targets (no RNG state shared with anything).
float Logit(size_t i) {
  uint32_t h = static_cast<uint32_t>(i) * 2654435761u;
  h ^= h >> 15;
  h *= 0x2c1b3c6du;
  h ^= h >> 12;
  return (static_cast<float>(h & 0xFFFFu) / 65536.0f - 0.5f) * 10.0f;
}

std::string CheckShape(size_t rows, size_t vocab, bool bf16) {
  const size_t n = rows * vocab;
  std::vector<float> l32(n);
  std::vector<uint16_t> l16(n);
  for (size_t i = 0; i < n; ++i) {
    l32[i] = Logit(i + vocab);
    l16[i] = F32ToBf16(l32[i]);
  }
  std::vector<int32_t> rowPtr(rows + 1), ids, actions(rows);
  std::vector<float> probs, tail(rows), adv(rows), old(rows);
  std::vector<uint8_t> mask(rows, 1);
  mask[1] = 0;
  for (size_t r = 0; r < rows; ++r) {
    const size_t support = 1 + (r * 7) % 13;
    for (size_t k = 0; k < support; ++k) {
      ids.push_back(static_cast<int32_t>((r * 977 + k * 7919) % vocab));
      probs.push_back(0.7f / support);
    }
    tail[r] = 0.3f;
    rowPtr[r + 1] = static_cast<int32_t>(ids.size());
    actions[r] = static_cast<int32_t>((r * 31337) % vocab);
    adv[r] = static_cast<float>(static_cast<int>(r % 5) - 2) * 0.7f;
    old[r] = -std::log(static_cast<float>(vocab)) + (static_cast<float>(r % 3) - 1.0f);
  }
  const char* dtype = bf16 ? "bf16" : "fp32";
  auto grads = [&](const std::vector<uint16_t>& g16, const std::vector<float>& g32) {
    if (!bf16) return g32;
    std::vector<float> g(g16.size());
    for (size_t i = 0; i < g.size(); ++i) g[i] = Bf16ToF32(g16[i]);
    return g;
  };
  for (int kind : {kForwardKL, kReverseKL, kJSD}) {
    SparseDivergenceArgs a;
    a.logits = LogitsArg{bf16 ? static_cast<const void*>(l16.data()) : static_cast<const void*>(l32.data()), bf16, rows, vocab};
    a.rowPtr = rowPtr.data();
    a.ids = ids.data();
    a.probs = probs.data();
    a.tail = tail.data();
    a.nnz = ids.size();
    a.mask = mask.data();
    a.params.kind = kind;
    a.params.beta = 0.4;
    a.params.invTemp = 1.0 / 0.8;
    std::vector<float> g32[2];
    std::vector<uint16_t> g16[2];
    double loss[2];
    for (int d = 0; d < 2; ++d) {
      g32[d].assign(bf16 ? 0 : n, 0.0f);
      g16[d].assign(bf16 ? n : 0, 0);
      a.grad = bf16 ? static_cast<void*>(g16[d].data()) : static_cast<void*>(g32[d].data());
      loss[d] = SparseDivergence(a, d ? Device::kCuda : Device::kCpu).loss;
    }
    const std::string what = std::string("divergence ") + std::to_string(kind) + " " + dtype + " vocab " + std::to_string(vocab);
    const std::string e = Compare(what.c_str(), loss[1], loss[0], grads(g16[1], g32[1]), grads(g16[0], g32[0]));
    if (!e.empty()) return e;
  }
  PolicyGradientArgs p;
  p.logits = LogitsArg{bf16 ? static_cast<const void*>(l16.data()) : static_cast<const void*>(l32.data()), bf16, rows, vocab};
  p.actions = actions.data();
  p.advantages = adv.data();
  p.mask = mask.data();
  p.oldLogprobs = old.data();
  p.params.hasOld = 1;
  std::vector<float> g32[2];
  std::vector<uint16_t> g16[2];
  double loss[2];
  for (int d = 0; d < 2; ++d) {
    g32[d].assign(bf16 ? 0 : n, 0.0f);
    g16[d].assign(bf16 ? n : 0, 0);
    p.grad = bf16 ? static_cast<void*>(g16[d].data()) : static_cast<void*>(g32[d].data());
    loss[d] = PolicyGradient(p, d ? Device::kCuda : Device::kCpu).loss;
  }
  const std::string what = std::string("policy gradient ") + dtype + " vocab " + std::to_string(vocab);
  return Compare(what.c_str(), loss[1], loss[0], grads(g16[1], g32[1]), grads(g16[0], g32[0]));
}

}  // namespace

CudaCheck CudaSelfCheck() {
  CudaCheck c;
  try {
    RequireCudaDevice();
    // 4099: rows not 16-byte aligned (scalar loads); 32000: vector loads.
    for (size_t vocab : {size_t{4099}, size_t{32000}})
      for (bool bf16 : {false, true}) {
        c.detail = CheckShape(6, vocab, bf16);
        if (!c.detail.empty()) return c;
      }
    c.ok = true;
    c.detail = "the CUDA losses reproduce the CPU on this machine";
  } catch (const Error& e) {
    c.detail = e.code + ": " + e.what();
  } catch (const std::exception& e) {
    c.detail = e.what();
  }
  return c;
}

}  // namespace loss
}  // namespace xopd
