// The GPU check, without Node: the real host entry points of the CUDA kernels (the losses'
// loss::SparseDivergence / loss::PolicyGradient and their cuda:: twins, the span projection's
// RunRows and cuda::ProjectRowsToDevice) against the float64 references, on the cases that matter
// for a device (supports above a block, support = vocab, vocab below a block, all rows masked,
// in-place output, rows > 65,535, rows x vocab > 2^31, bf16 with temperature and underflow,
// determinism, vocab 262,144 and 400,000, students far above the rest, PPO clipping), plus a bench.
//
// A .cu file (nvcc; it launches the fused kernel directly for the > 2^31 case). Built twice from the
// same sources by gpu/build.sh: with nvcc for a device (scripts/gpu-check.sh
// runs it, under compute-sanitizer too), and as host C++ under gpu/emulation/ (CI: every kernel
// block by block with its real block size, once under ThreadSanitizer). Tolerances come from
// test/helpers/tolerances.ts (gpu/tolerances.h is generated from it; a test checks they agree).
//
//   xopd-gpu-check [--only SUBSTRING[|SUBSTRING...]] [--quick] [--list]   the cases
//   xopd-gpu-check --bench                                                the bench (device builds)
// Prints one line per case and "N passed, M failed"; exits 1 when a case failed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "common/cuda_info.h"
#include "common/cuda_macros.h"
#include "common/cuda_workspace.cuh"
#include "common/errors.h"
#include "common/portable_exp.h"
#include "loss/loss.h"
#if !defined(XOPD_CUDA_EMULATION)
#include "loss/loss_bench.h"  // the bench kernels: device builds only
#endif
#include "loss/loss_cuda.h"
#include "loss/loss_reference.h"
#include "loss/sparse_divergence_cuda.cuh"
#include "project/span_cuda.h"
#include "project/span_projection.h"
#include "project/span_projection_reference.h"
#include "tokenizer/token_table.h"
#include "tolerances.h"

namespace {
using namespace xopd;
using xopd::gpu_check::Tolerance;

#if defined(XOPD_CUDA_EMULATION)
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

// ---------------------------------------------------------------- reporting

struct Options {
  std::vector<std::string> only;  // --only a|b|c: cases whose name holds one of them
  bool quick = false, bench = false, list = false;
};
Options gOpt;

bool Selected(const std::string& name) {
  if (gOpt.only.empty()) return true;
  for (const std::string& o : gOpt.only)
    if (name.find(o) != std::string::npos) return true;
  return false;
}
int gPassed = 0, gFailed = 0;

std::chrono::steady_clock::time_point gLast = std::chrono::steady_clock::now();

void Report(const std::string& name, bool ok, const std::string& detail) {
  const auto now = std::chrono::steady_clock::now();
  std::printf("%-58s %s %5.1fs  %s\n", name.c_str(), ok ? "ok  " : "FAIL", std::chrono::duration<double>(now - gLast).count(), detail.c_str());
  gLast = now;
  std::fflush(stdout);
  (ok ? gPassed : gFailed)++;
}

// The worst |got - want| / bound over the entries (<= 1 passes), the bound as tolerances.ts has it.
double WorstRatio(const std::vector<double>& got, const std::vector<double>& want, const Tolerance& t,
                  const std::vector<size_t>* only = nullptr) {
  double maxWant = 0;
  for (double w : want) maxWant = std::max(maxWant, std::fabs(w));
  double worst = 0;
  auto one = [&](size_t i) {
    const double b = t.rel * std::fabs(want[i]) + t.abs + t.absOfMax * maxWant, err = std::fabs(got[i] - want[i]);
    worst = std::max(worst, b == 0 ? (err == 0 ? 0 : INFINITY) : err / b);
  };
  if (only) {
    for (size_t i : *only) one(i);
  } else {
    for (size_t i = 0; i < want.size(); ++i) one(i);
  }
  return worst;
}

std::string Fmt(const char* f, double a) {
  char b[64];
  std::snprintf(b, sizeof(b), f, a);
  return b;
}

// ---------------------------------------------------------------- data

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t Next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
};

// Logits like a language model's: spread `scale`, a few peaked entries.
std::vector<float> RandomLogits(size_t rows, size_t vocab, uint64_t seed, double scale = 8) {
  Rng r(seed);
  std::vector<float> x(rows * vocab);
  for (float& v : x) v = static_cast<float>((r.Uniform() - 0.5) * scale + (r.Uniform() < 0.01 ? 8 * r.Uniform() : 0));
  return x;
}

struct Targets {
  std::vector<int32_t> rowPtr, ids;
  std::vector<float> probs, tail;
};

// support entries per row (support = vocab: every id, tail 0); probabilities + tail = 1.
Targets RandomTargets(size_t rows, size_t vocab, size_t support, uint64_t seed) {
  Rng r(seed);
  Targets t;
  t.rowPtr.push_back(0);
  std::vector<int32_t> perm(vocab);
  std::iota(perm.begin(), perm.end(), 0);
  for (size_t j = 0; j < rows; ++j) {
    const size_t n = std::min(support, vocab);
    for (size_t k = 0; k < n; ++k) std::swap(perm[k], perm[k + r.Below(vocab - k)]);  // n distinct ids (a partial shuffle)
    std::vector<double> w(n);
    double total = 0;
    for (double& x : w) total += (x = r.Uniform() + 0.05);
    const double tail = n == vocab ? 0.0 : (n == 0 ? 1.0 : 0.05 + 0.3 * r.Uniform());
    for (size_t k = 0; k < n; ++k) {
      t.ids.push_back(perm[k]);
      t.probs.push_back(static_cast<float>(w[k] / total * (1.0 - tail)));
    }
    t.tail.push_back(static_cast<float>(tail));
    t.rowPtr.push_back(static_cast<int32_t>(t.ids.size()));
  }
  return t;
}

std::vector<uint16_t> ToBf16(const std::vector<float>& x) {
  std::vector<uint16_t> b(x.size());
  for (size_t i = 0; i < x.size(); ++i) b[i] = loss::F32ToBf16(x[i]);
  return b;
}

// ---------------------------------------------------------------- the divergence

struct DivergenceCase {
  std::string name;
  size_t rows = 8, vocab = 32000, support = 40;
  bool bf16 = false, inPlace = false;
  double temperature = 1.0, beta = 0.5;
  std::vector<std::string> kinds = {"forward-kl", "reverse-kl", "jsd"};
  int maskEvery = 3;             // rows with r % maskEvery == 1 masked; 0 none; -1 all
  float lift = 0;                // support logits set near 0, every other logit lowered by lift
  size_t workspaceLimit = 0;     // bytes (0: the default) — small values force many chunks
  std::vector<unsigned> blocks;  // emulation: run only these rows (blockIdx.x of a one-chunk launch)
  bool compareCpu = false;       // also against the CPU path (cudaVsCpu tolerances)
  bool cpuOnly = false;          // against the CPU path alone (the float64 reference cannot represent the case)
  bool quick = true;             // part of --quick
};

int KindOf(const std::string& k) { return k == "forward-kl" ? loss::kForwardKL : k == "reverse-kl" ? loss::kReverseKL : loss::kJSD; }

struct DivergenceRun {
  double loss = 0;
  std::vector<double> rowLoss, grad;  // grad as float64
  std::string error;
};

// Calls the CUDA path: the public entry point, or cuda:: directly when only some blocks run
// (then the per-row losses of those rows are compared, not the mean).
DivergenceRun CallDivergence(const DivergenceCase& c, const std::string& kind, const std::vector<float>& l32,
                             const std::vector<uint16_t>& l16, const Targets& t, const std::vector<uint8_t>& mask, Device dev) {
  DivergenceRun out;
  const size_t n = c.rows * c.vocab;
  std::vector<float> g32;
  std::vector<uint16_t> g16;
  loss::SparseDivergenceArgs a;
  if (c.bf16) {
    g16 = c.inPlace ? l16 : std::vector<uint16_t>(n);
    a.logits.data = c.inPlace ? g16.data() : l16.data();
    a.grad = g16.data();
  } else {
    g32 = c.inPlace ? l32 : std::vector<float>(n);
    a.logits.data = c.inPlace ? g32.data() : l32.data();
    a.grad = g32.data();
  }
  a.logits.bf16 = c.bf16;
  a.logits.rows = c.rows;
  a.logits.vocab = c.vocab;
  a.rowPtr = t.rowPtr.data();
  a.ids = t.ids.data();
  a.probs = t.probs.data();
  a.tail = t.tail.data();
  a.nnz = t.ids.size();
  a.mask = c.maskEvery == 0 ? nullptr : mask.data();
  a.params.kind = loss::ResolveKind(KindOf(kind), c.beta);
  a.params.beta = c.beta;
  a.params.invTemp = 1.0 / c.temperature;
  try {
    if (c.blocks.empty()) {
      out.loss = loss::SparseDivergence(a, dev).loss;
    } else {
      const size_t kept = loss::CountKept(a.mask, c.rows);
      out.rowLoss.assign(c.rows, 0.0);
      const loss::RowOutputs o{kept ? 1.0 / kept : 0.0, out.rowLoss.data(), nullptr};
      int64_t bad = -1;
      out.error = loss::cuda::SparseDivergence(a, o, &bad);
    }
  } catch (const Error& e) {
    out.error = e.code + ": " + e.what();
  }
  out.grad.resize(n);
  for (size_t i = 0; i < n; ++i) out.grad[i] = c.bf16 ? loss::Bf16ToF32(g16[i]) : g32[i];
  return out;
}

void RunDivergenceCase(const DivergenceCase& c) {
  std::vector<float> l32 = RandomLogits(c.rows, c.vocab, c.vocab * 31 + c.rows);
  const Targets t = RandomTargets(c.rows, c.vocab, c.support, c.vocab + 7);
  if (c.lift > 0) {
    for (float& v : l32) v -= c.lift;
    for (size_t j = 0; j < c.rows; ++j)
      for (int32_t k = t.rowPtr[j]; k < t.rowPtr[j + 1]; ++k) l32[j * c.vocab + t.ids[k]] = -static_cast<float>(k % 3);
  }
  const std::vector<uint16_t> l16 = c.bf16 ? ToBf16(l32) : std::vector<uint16_t>();
  std::vector<double> l64(l32.size());
  for (size_t i = 0; i < l32.size(); ++i) l64[i] = c.bf16 ? loss::Bf16ToF32(l16[i]) : l32[i];
  std::vector<uint8_t> mask(c.rows, 1);
  if (c.maskEvery == -1) std::fill(mask.begin(), mask.end(), 0);
  else if (c.maskEvery > 0)
    for (size_t j = 0; j < c.rows; ++j) mask[j] = j % c.maskEvery == 1 ? 0 : 1;
  std::vector<double> probs64(t.probs.begin(), t.probs.end()), tail64(t.tail.begin(), t.tail.end());
  // Rows compared: all, or the rows whose blocks ran.
  std::vector<size_t> rows, entries;
  if (c.blocks.empty() || !kEmulated) {
    rows.resize(c.rows);
    std::iota(rows.begin(), rows.end(), 0);
  } else {
    for (unsigned b : c.blocks) rows.push_back(b);
  }
  for (size_t r : rows)
    for (size_t v = 0; v < c.vocab; ++v) entries.push_back(r * c.vocab + v);
  SetCudaWorkspaceLimit(c.workspaceLimit);
#if defined(XOPD_CUDA_EMULATION)
  if (!c.blocks.empty()) {
    std::vector<unsigned> keep = c.blocks;
    xopd_emu::SetBlockFilter([keep](unsigned b) { return std::find(keep.begin(), keep.end(), b) != keep.end(); });
  }
#endif
  for (const std::string& kind : c.kinds) {
    const std::string name = c.name + " " + kind;
    if (!Selected(name)) continue;
    const DivergenceRun got = CallDivergence(c, kind, l32, l16, t, mask, Device::kCuda);
    if (!got.error.empty()) {
      Report(name, false, got.error);
      continue;
    }
    if (c.cpuOnly) {
      const DivergenceRun cpu = CallDivergence(c, kind, l32, l16, t, mask, Device::kCpu);
      const double cl = std::fabs(got.loss - cpu.loss) / (gpu_check::cudaVsCpuLoss.rel * std::fabs(cpu.loss) + gpu_check::cudaVsCpuLoss.abs);
      const double cg = WorstRatio(got.grad, cpu.grad, gpu_check::cudaVsCpuGrad);
      Report(name, cpu.error.empty() && cl <= 1 && cg <= 1, "vs CPU (the float64 reference's p_other underflows to 0): loss " + Fmt("%.2g", cl) + ", grad " + Fmt("%.2g", cg) + " of cudaVsCpu");
      continue;
    }
    loss::SparseDivergenceReferenceResult ref;
    loss::SparseDivergenceReference(l64.data(), c.rows, c.vocab, t.rowPtr.data(), t.ids.data(), probs64.data(), tail64.data(), mask.data(),
                                    kind, c.beta, c.temperature, 1e-8, ref);
    double lossRatio;
    std::string what;
    if (c.blocks.empty()) {
      const Tolerance& lt = gpu_check::cudaLoss;
      lossRatio = std::fabs(got.loss - ref.loss) / (lt.rel * std::fabs(ref.loss) + lt.abs);
      what = "loss";
    } else {
      std::vector<double> g, w;
      for (size_t r : rows) {  // per-row losses before the 1/kept of the mean, on both sides
        g.push_back(got.rowLoss[r]);
        w.push_back(ref.rowLoss[r]);
      }
      lossRatio = WorstRatio(g, w, gpu_check::cudaLoss);
      what = "row losses";
    }
    const Tolerance& gt = c.bf16 ? gpu_check::bf16Grad : gpu_check::lossGrad;
    const double gradRatio = WorstRatio(got.grad, ref.grad, gt, &entries);
    bool maskedZero = true;
    for (size_t r : rows)
      if (!mask[r])
        for (size_t v = 0; v < c.vocab; ++v) maskedZero &= got.grad[r * c.vocab + v] == 0.0;
    std::string detail = what + " " + Fmt("%.2g", lossRatio) + " of cudaLoss, grad " + Fmt("%.2g", gradRatio) + " of " +
                         (c.bf16 ? "bf16Grad" : "lossGrad");
    bool ok = lossRatio <= 1 && gradRatio <= 1 && maskedZero;
    if (!maskedZero) detail += ", a masked row has a nonzero gradient";
    if (c.compareCpu) {
      const DivergenceRun cpu = CallDivergence(c, kind, l32, l16, t, mask, Device::kCpu);
      const double cl = std::fabs(got.loss - cpu.loss) / (gpu_check::cudaVsCpuLoss.rel * std::fabs(cpu.loss) + gpu_check::cudaVsCpuLoss.abs);
      const double cg = WorstRatio(got.grad, cpu.grad, gpu_check::cudaVsCpuGrad);
      detail += "; vs CPU loss " + Fmt("%.2g", cl) + ", grad " + Fmt("%.2g", cg) + " of cudaVsCpu";
      ok = ok && cl <= 1 && cg <= 1;
    }
    Report(name, ok, detail);
  }
#if defined(XOPD_CUDA_EMULATION)
  xopd_emu::SetBlockFilter(nullptr);
#endif
  SetCudaWorkspaceLimit(0);
}

// ---------------------------------------------------------------- the policy gradient

struct PolicyCase {
  std::string name;
  size_t rows = 8, vocab = 32000;
  bool bf16 = false, ppo = true, inPlace = false;
  int maskEvery = 4;
  std::vector<unsigned> blocks;
  bool quick = true;
};

void RunPolicyCase(const PolicyCase& c) {
  if (!Selected(c.name)) return;
  const size_t n = c.rows * c.vocab;
  std::vector<float> l32 = RandomLogits(c.rows, c.vocab, c.vocab + 3);
  const std::vector<uint16_t> l16 = c.bf16 ? ToBf16(l32) : std::vector<uint16_t>();
  Rng r(c.vocab);
  std::vector<int32_t> actions(c.rows);
  std::vector<float> adv(c.rows), old(c.rows);
  std::vector<uint8_t> mask(c.rows, 1);
  for (size_t j = 0; j < c.rows; ++j) {
    actions[j] = static_cast<int32_t>(r.Below(c.vocab));
    adv[j] = static_cast<float>((r.Uniform() - 0.5) * 4);
    old[j] = static_cast<float>(-std::log(static_cast<double>(c.vocab)) + (r.Uniform() - 0.5) * 2);
    if (c.maskEvery == -1 || (c.maskEvery > 0 && j % c.maskEvery == 2)) mask[j] = 0;
  }
  std::vector<float> g32;
  std::vector<uint16_t> g16;
  loss::PolicyGradientArgs a;
  if (c.bf16) {
    g16 = c.inPlace ? l16 : std::vector<uint16_t>(n);
    a.logits.data = c.inPlace ? g16.data() : l16.data();
    a.grad = g16.data();
  } else {
    g32 = c.inPlace ? l32 : std::vector<float>(n);
    a.logits.data = c.inPlace ? g32.data() : l32.data();
    a.grad = g32.data();
  }
  a.logits.bf16 = c.bf16;
  a.logits.rows = c.rows;
  a.logits.vocab = c.vocab;
  a.actions = actions.data();
  a.advantages = adv.data();
  a.mask = mask.data();
  a.oldLogprobs = c.ppo ? old.data() : nullptr;
  a.params.hasOld = c.ppo;
  std::vector<size_t> rows;
  if (c.blocks.empty() || !kEmulated) {
    rows.resize(c.rows);
    std::iota(rows.begin(), rows.end(), 0);
  } else {
    for (unsigned b : c.blocks) rows.push_back(b);
  }
  std::string error;
  double gotLoss = 0, gotClipped = 0;
  std::vector<double> rowLoss(c.rows);
  std::vector<int32_t> rowClipped(c.rows);
#if defined(XOPD_CUDA_EMULATION)
  if (!c.blocks.empty()) {
    std::vector<unsigned> keep = c.blocks;
    xopd_emu::SetBlockFilter([keep](unsigned b) { return std::find(keep.begin(), keep.end(), b) != keep.end(); });
  }
#endif
  try {
    if (c.blocks.empty()) {
      const loss::LossTotals tot = loss::PolicyGradient(a, Device::kCuda);
      gotLoss = tot.loss;
      gotClipped = tot.clippedFraction;
    } else {
      const size_t kept = loss::CountKept(a.mask, c.rows);
      const loss::RowOutputs o{kept ? 1.0 / kept : 0.0, rowLoss.data(), rowClipped.data()};
      int64_t bad = -1;
      error = loss::cuda::PolicyGradient(a, o, &bad);
    }
  } catch (const Error& e) {
    error = e.code + ": " + e.what();
  }
#if defined(XOPD_CUDA_EMULATION)
  xopd_emu::SetBlockFilter(nullptr);
#endif
  if (!error.empty()) {
    Report(c.name, false, error);
    return;
  }
  std::vector<double> l64(n), adv64(adv.begin(), adv.end()), old64(old.begin(), old.end()), grad(n);
  for (size_t i = 0; i < n; ++i) {
    l64[i] = c.bf16 ? loss::Bf16ToF32(l16[i]) : l32[i];
    grad[i] = c.bf16 ? loss::Bf16ToF32(g16[i]) : g32[i];
  }
  loss::PolicyGradientReferenceResult ref;
  loss::PolicyGradientReference(l64.data(), c.rows, c.vocab, actions.data(), adv64.data(), mask.data(), c.ppo ? old64.data() : nullptr,
                                a.params.low, a.params.high, a.params.dual, ref);
  std::vector<size_t> entries;
  for (size_t rr : rows)
    for (size_t v = 0; v < c.vocab; ++v) entries.push_back(rr * c.vocab + v);
  const Tolerance& gt = c.bf16 ? gpu_check::bf16Grad : gpu_check::lossGrad;
  const double gradRatio = WorstRatio(grad, ref.grad, gt, &entries);
  double lossRatio = 0;
  bool clippedOk = true;
  if (c.blocks.empty()) {
    lossRatio = std::fabs(gotLoss - ref.loss) / (gpu_check::cudaLoss.rel * std::fabs(ref.loss) + gpu_check::cudaLoss.abs);
    clippedOk = gotClipped == ref.clippedFraction;
  }
  Report(c.name, lossRatio <= 1 && gradRatio <= 1 && clippedOk,
         "loss " + Fmt("%.2g", lossRatio) + " of cudaLoss, grad " + Fmt("%.2g", gradRatio) + " of " + (c.bf16 ? "bf16Grad" : "lossGrad") +
             (c.ppo ? ", clipped fraction " + Fmt("%.3f", gotClipped) + (clippedOk ? " = reference" : " != reference") : ""));
}

// ---------------------------------------------------------------- rows x vocab > 2^31

// The fused kernel launched directly on device buffers of more than 2^31 elements (bf16): on a
// device every row runs; under the emulation only the listed rows (their pages alone are touched).
void RunHugeCase() {
  const std::string name = "divergence rows x vocab > 2^31 (65600 x 32768 bf16)";
  if (!Selected(name)) return;
  if (gOpt.quick && !kEmulated) return;
  const size_t rows = 65600, vocab = 32768, support = 24;
  const std::vector<unsigned> check = {0, 65535, 65536, 65599};
  const size_t n = rows * vocab;
  loss::cuda::FusedLaunch f;
  xopd::cuda::DeviceBuffer logits, grad, rowPtr, ids, probs, tail, rowLoss, zS, eB, hB, bad;
  cudaError_t e = cudaSuccess;
  const size_t nnz = rows * support;
  for (auto [b, bytes] : {std::pair<xopd::cuda::DeviceBuffer*, size_t>{&logits, n * 2}, {&grad, n * 2}, {&rowPtr, (rows + 1) * 4},
                          {&ids, nnz * 4}, {&probs, nnz * 4}, {&tail, rows * 4}, {&rowLoss, rows * 8}, {&zS, nnz * 4}, {&eB, nnz * 8},
                          {&hB, nnz * 8}, {&bad, 8}})
    if (e == cudaSuccess) e = b->Reserve(bytes);
  if (e != cudaSuccess) {
    Report(name, false, std::string("cudaMalloc failed: ") + cudaGetErrorString(e));
    return;
  }
  const Targets t = RandomTargets(rows, vocab, support, 5);
  std::vector<float> rowsL32(check.size() * vocab);
  std::vector<uint16_t> row16(vocab);
  std::string err;
  auto fail = [&](const char* what, cudaError_t x) {
    if (x != cudaSuccess && err.empty()) err = std::string(what) + ": " + cudaGetErrorString(x);
  };
  if (!kEmulated) fail("cudaMemset", cudaMemset(logits.ptr, 0, n * 2));  // rows not checked: all-zero logits
  for (size_t i = 0; i < check.size(); ++i) {
    const std::vector<float> l = RandomLogits(1, vocab, 100 + i);
    for (size_t v = 0; v < vocab; ++v) {
      row16[v] = loss::F32ToBf16(l[v]);
      rowsL32[i * vocab + v] = loss::Bf16ToF32(row16[v]);
    }
    fail("cudaMemcpy", cudaMemcpy(logits.as<uint16_t>() + static_cast<size_t>(check[i]) * vocab, row16.data(), vocab * 2, cudaMemcpyHostToDevice));
  }
  fail("cudaMemcpy", cudaMemcpy(rowPtr.ptr, t.rowPtr.data(), (rows + 1) * 4, cudaMemcpyHostToDevice));
  fail("cudaMemcpy", cudaMemcpy(ids.ptr, t.ids.data(), nnz * 4, cudaMemcpyHostToDevice));
  fail("cudaMemcpy", cudaMemcpy(probs.ptr, t.probs.data(), nnz * 4, cudaMemcpyHostToDevice));
  fail("cudaMemcpy", cudaMemcpy(tail.ptr, t.tail.data(), rows * 4, cudaMemcpyHostToDevice));
  fail("cudaMemset", cudaMemset(bad.ptr, 0xFF, 8));
  f.rows = rows;
  f.vocab = vocab;
  f.logits = logits.ptr;
  f.grad = grad.ptr;
  f.rowBegin = rowPtr.as<int32_t>();
  f.rowEnd = f.rowBegin + 1;
  f.ids = ids.as<int32_t>();
  f.probs = probs.as<float>();
  f.tail = tail.as<float>();
  f.zSupport = zS.as<float>();
  f.eBuf = eB.as<double>();
  f.hBuf = hB.as<double>();
  f.rowLoss = rowLoss.as<double>();
  f.badRow = bad.as<unsigned long long>();
  f.P.kind = loss::kJSD;
  f.P.beta = 0.3;
  f.invKept = 1.0;
#if defined(XOPD_CUDA_EMULATION)
  xopd_emu::SetBlockFilter([&check](unsigned b) { return std::find(check.begin(), check.end(), b) != check.end(); });
#endif
  if (err.empty()) err = loss::cuda::LaunchFused<uint16_t>(f, nullptr);
  if (err.empty()) fail("cudaDeviceSynchronize", cudaDeviceSynchronize());
#if defined(XOPD_CUDA_EMULATION)
  xopd_emu::SetBlockFilter(nullptr);
#endif
  double worst = 0;
  if (err.empty()) {
    for (size_t i = 0; i < check.size() && err.empty(); ++i) {
      const size_t r = check[i];
      double rl = 0;
      fail("cudaMemcpy", cudaMemcpy(row16.data(), grad.as<uint16_t>() + r * vocab, vocab * 2, cudaMemcpyDeviceToHost));
      fail("cudaMemcpy", cudaMemcpy(&rl, rowLoss.as<double>() + r, 8, cudaMemcpyDeviceToHost));
      std::vector<double> z(rowsL32.begin() + i * vocab, rowsL32.begin() + (i + 1) * vocab), got(vocab);
      for (size_t v = 0; v < vocab; ++v) got[v] = loss::Bf16ToF32(row16[v]);
      const int32_t rp[2] = {0, t.rowPtr[r + 1] - t.rowPtr[r]};
      std::vector<double> pr(t.probs.begin() + t.rowPtr[r], t.probs.begin() + t.rowPtr[r + 1]);
      const double tl = t.tail[r];
      const uint8_t one = 1;
      loss::SparseDivergenceReferenceResult ref;
      loss::SparseDivergenceReference(z.data(), 1, vocab, rp, t.ids.data() + t.rowPtr[r], pr.data(), &tl, &one, "jsd", 0.3, 1.0, 1e-8, ref);
      worst = std::max({worst, WorstRatio(got, ref.grad, gpu_check::bf16Grad),
                        std::fabs(rl - ref.loss) / (gpu_check::cudaLoss.rel * std::fabs(ref.loss) + gpu_check::cudaLoss.abs)});
    }
  }
  for (auto* b : {&logits, &grad, &rowPtr, &ids, &probs, &tail, &rowLoss, &zS, &eB, &hB, &bad}) b->Free();
  Report(name, err.empty() && worst <= 1, err.empty() ? "rows 0, 65535, 65536, 65599: worst " + Fmt("%.2g", worst) + " of bf16Grad / cudaLoss" : err);
}

// ---------------------------------------------------------------- determinism, pipeline

// The same call twice, and split into many chunks: identical bits (loss and gradient).
void RunDeterminism() {
  const std::string name = "divergence determinism (repeat, 1 chunk vs many)";
  if (!Selected(name)) return;
  DivergenceCase c;
  c.rows = kEmulated ? 12 : 512;
  c.vocab = 4099;
  c.support = 600;
  const std::vector<float> l32 = RandomLogits(c.rows, c.vocab, 77);
  const Targets t = RandomTargets(c.rows, c.vocab, c.support, 78);
  std::vector<uint8_t> mask(c.rows, 1);
  mask[1] = 0;
  const DivergenceRun a = CallDivergence(c, "jsd", l32, {}, t, mask, Device::kCuda);
  const DivergenceRun b = CallDivergence(c, "jsd", l32, {}, t, mask, Device::kCuda);
  SetCudaWorkspaceLimit(4 * (2 * c.vocab * 4 + 64) + 600 * 40);  // a few rows per chunk
#if defined(XOPD_CUDA_EMULATION)
  xopd_emu::ResetStats();
#endif
  const DivergenceRun chunked = CallDivergence(c, "jsd", l32, {}, t, mask, Device::kCuda);
  SetCudaWorkspaceLimit(0);
  size_t launches = 0;
#if defined(XOPD_CUDA_EMULATION)
  launches = xopd_emu::GetStats().launches;
#endif
  const bool same = a.error.empty() && b.error.empty() && chunked.error.empty() && a.loss == b.loss && a.grad == b.grad &&
                    a.loss == chunked.loss && a.grad == chunked.grad;
  Report(name, same && (!kEmulated || launches > 2),
         same ? "identical bits" + (kEmulated ? " (" + std::to_string(launches) + " chunks)" : std::string()) : "results differ " + a.error + b.error + chunked.error);
}

#if defined(XOPD_CUDA_EMULATION)
// What the emulation can see of the host path: no pageable async copy, both streams in use, the
// device memory under the workspace limit, everything freed on request, faults handled.
void RunPipelineChecks() {
  const std::string name = "pipeline: pinned staging, chunks, limit, release";
  if (!Selected(name)) return;
  DivergenceCase c;
  c.rows = 24;
  c.vocab = 4096;
  c.support = 30;
  const std::vector<float> l32 = RandomLogits(c.rows, c.vocab, 5);
  const Targets t = RandomTargets(c.rows, c.vocab, c.support, 6);
  std::vector<uint8_t> mask(c.rows, 1);
  ReleaseCudaWorkspaces();
  const size_t limit = 6 * (2 * c.vocab * 4 + 64) + 6 * 30 * 40;
  SetCudaWorkspaceLimit(limit);
  xopd_emu::ResetStats();
  const DivergenceRun r = CallDivergence(c, "forward-kl", l32, {}, t, mask, Device::kCuda);
  const xopd_emu::Stats st = xopd_emu::GetStats();
  SetCudaWorkspaceLimit(0);
  const size_t freed = ReleaseCudaWorkspaces();
  const xopd_emu::Stats after = xopd_emu::GetStats();
  const bool ok = r.error.empty() && st.pageableAsyncCopies == 0 && st.launches >= 4 && st.peakDeviceBytes <= limit && st.streamsCreated == 2 &&
                  st.streamsLive == 0 && freed > 0 && after.deviceBytes == 0 && after.pinnedBytes == 0;
  char d[300];
  std::snprintf(d, sizeof(d), "%zu chunks, peak device %zu <= limit %zu, pageable async copies %zu, streams %zu, released %zu bytes, left %zu",
                st.launches, st.peakDeviceBytes, limit, st.pageableAsyncCopies, st.streamsCreated, freed, after.deviceBytes + after.pinnedBytes);
  Report(name, ok, r.error.empty() ? d : r.error);

  // A batch larger than the device: 24 rows of 4096 floats need ~0.8 MB; the device has 256 KiB.
  const std::string big = "pipeline: batch larger than device memory";
  xopd_emu::SetDeviceMemory(256 * 1024);
  const DivergenceRun small = CallDivergence(c, "forward-kl", l32, {}, t, mask, Device::kCuda);
  xopd_emu::SetDeviceMemory(size_t{16} << 30);
  ReleaseCudaWorkspaces();
  const DivergenceRun whole = CallDivergence(c, "forward-kl", l32, {}, t, mask, Device::kCuda);
  Report(big, small.error.empty() && small.loss == whole.loss && small.grad == whole.grad,
         small.error.empty() ? "same bits as with room for the whole batch" : small.error);

  // One allocation fails (memory taken meanwhile): the call halves its chunks and succeeds.
  ReleaseCudaWorkspaces();
  xopd_emu::FailAllocation(3, 1);
  const DivergenceRun retried = CallDivergence(c, "forward-kl", l32, {}, t, mask, Device::kCuda);
  Report("pipeline: an allocation fails, the chunks halve", retried.error.empty() && retried.loss == whole.loss && retried.grad == whole.grad,
         retried.error.empty() ? "same bits" : retried.error);

  // Every allocation fails, then a kernel faults: coded errors, no crash, and the next call works.
  const std::string faults = "pipeline: out of memory and kernel fault";
  ReleaseCudaWorkspaces();
  xopd_emu::FailAllocation(1, 1000);
  const DivergenceRun oom = CallDivergence(c, "forward-kl", l32, {}, t, mask, Device::kCuda);
  xopd_emu::FailAllocation(0);
  const DivergenceRun afterOom = CallDivergence(c, "forward-kl", l32, {}, t, mask, Device::kCuda);
  xopd_emu::FaultKernel(1);
  const DivergenceRun fault = CallDivergence(c, "forward-kl", l32, {}, t, mask, Device::kCuda);
  ReleaseCudaWorkspaces();
  xopd_emu::ResetDevice();
  const DivergenceRun afterFault = CallDivergence(c, "forward-kl", l32, {}, t, mask, Device::kCuda);
  const bool fok = oom.error.find("E_CUDA: ") == 0 && oom.error.find("out of memory") != std::string::npos && afterOom.error.empty() && afterOom.loss == whole.loss &&
                   fault.error.find("E_CUDA: ") == 0 && fault.error.find("illegal memory access") != std::string::npos &&
                   afterFault.error.empty() && afterFault.loss == whole.loss;
  Report(faults, fok, "out of memory: '" + oom.error + "'; fault: '" + fault.error + "'");
}
#endif

// ---------------------------------------------------------------- span projection

// A synthetic tokenizer: every byte, then `merges` strings cut from the text, a special token last.
TokenTable MakeTable(const std::string& text, size_t merges, uint64_t seed, const std::string& special) {
  Rng r(seed);
  std::vector<std::string> toks;
  for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
  std::map<std::string, bool> seen;
  while (toks.size() < 256 + merges) {
    const size_t len = 2 + r.Below(5), at = r.Below(text.size() - len);
    const std::string s = text.substr(at, len);
    if (seen[s]) continue;
    seen[s] = true;
    toks.push_back(s);
  }
  toks.push_back(special);
  TokenTable t;
  t.offsets.push_back(0);
  for (const std::string& s : toks) {
    t.bytes.insert(t.bytes.end(), s.begin(), s.end());
    t.offsets.push_back(static_cast<uint32_t>(t.bytes.size()));
    t.special.push_back(0);
  }
  t.special.back() = 1;
  return t;
}

// Greedy longest-match tokenization of text (non-special tokens), then the special token.
std::vector<int32_t> Tokenize(const TokenTable& t, const std::string& text) {
  std::map<std::string, int32_t> ids;
  size_t longest = 0;
  for (int32_t i = 0; i + 1 < t.vocab(); ++i) {
    ids[std::string(reinterpret_cast<const char*>(t.data(i)), t.length(i))] = i;
    longest = std::max<size_t>(longest, t.length(i));
  }
  std::vector<int32_t> out;
  for (size_t at = 0; at < text.size();) {
    for (size_t len = std::min(longest, text.size() - at); len >= 1; --len) {
      auto it = ids.find(text.substr(at, len));
      if (it != ids.end()) {
        out.push_back(it->second);
        at += len;
        break;
      }
    }
  }
  out.push_back(t.vocab() - 1);
  return out;
}

// The CPU and CUDA rows, the CSR written from each, the CSR left on the device, against the float64
// reference; handOff: also the divergence on the device-resident CSR vs on the host CSR (a block of
// 512 threads per row: the emulation keeps that to the small case, and skips it under TSan).
void RunProjectionCase(size_t textBytes, int K, uint64_t seed, bool handOff) {
  const std::string name = "span projection " + std::to_string(textBytes) + " bytes, k " + std::to_string(K);
  if (!Selected(name)) return;
  Rng r(seed);
  const char* words[] = {" the", " 5198", " model", " token", " of", " 2024", " distill", " and", "\n", " a", " 3.14", " Qwen", " Llama"};
  std::string text;
  while (text.size() < textBytes) text += words[r.Below(sizeof(words) / sizeof(words[0]))];
  const TokenTable student = MakeTable(text, 300, seed + 1, "<|end|>"), teacher = MakeTable(text, 500, seed + 2, "<|end|>");
  const std::vector<int32_t> s = Tokenize(student, text), tt = Tokenize(teacher, text);
  // Chunks: the byte positions where both sides have a boundary.
  std::vector<int32_t> cs0, cs1, ct0, ct1;
  std::vector<uint8_t> flags;
  {
    size_t i = 0, j = 0, bi = 0, bj = 0, si = 0, sj = 0;
    while (i < s.size() || j < tt.size()) {
      if (i < s.size()) bi += student.length(s[i]), ++i;
      while (j < tt.size() && bj < bi) bj += teacher.length(tt[j]), ++j;
      while (i < s.size() && bi < bj) bi += student.length(s[i]), ++i;
      if (bi == bj && (i < s.size()) == (j < tt.size())) {
        if (i == s.size() && j < tt.size()) continue;
        cs0.push_back(static_cast<int32_t>(si));
        cs1.push_back(static_cast<int32_t>(i));
        ct0.push_back(static_cast<int32_t>(sj));
        ct1.push_back(static_cast<int32_t>(j));
        flags.push_back(0);
        si = i;
        sj = j;
      }
      if (i == s.size() && j == tt.size()) break;
    }
    if (si < s.size() || sj < tt.size()) {  // the special tokens at the end: one chunk
      cs0.push_back(static_cast<int32_t>(si));
      cs1.push_back(static_cast<int32_t>(s.size()));
      ct0.push_back(static_cast<int32_t>(sj));
      ct1.push_back(static_cast<int32_t>(tt.size()));
      flags.push_back(0);
    }
  }
  const size_t m = tt.size();
  std::vector<float> lp(m), topLp(m * K);
  std::vector<int32_t> topIds(m * K);
  for (size_t i = 0; i < m; ++i) {
    const double pReal = 0.3 + 0.7 * r.Uniform();
    lp[i] = static_cast<float>(std::log(pReal));
    std::vector<int32_t> cand;
    while (static_cast<int>(cand.size()) < K) {
      const int32_t id = r.Uniform() < 0.3 ? tt[i] : static_cast<int32_t>(r.Below(teacher.vocab()));
      if (std::find(cand.begin(), cand.end(), id) == cand.end()) cand.push_back(id);
    }
    double w = 0;
    std::vector<double> ws(K);
    for (double& x : ws) w += (x = r.Uniform() + 0.01);
    for (int c = 0; c < K; ++c) {
      topIds[i * K + c] = cand[c];
      topLp[i * K + c] = cand[c] == tt[i] ? lp[i] : static_cast<float>(std::log((1 - pReal) * 0.95 * ws[c] / w));
    }
  }
  const int32_t eos[1] = {teacher.vocab() - 1};
  project::SpanTables tables;
  project::BuildSpanTables(student, teacher, nullptr, 0, eos, 1, student.vocab() - 1, tables);
  project::ProjectInput in;
  in.studentIds = s.data();
  in.n = s.size();
  in.teacherIds = tt.data();
  in.m = m;
  in.studentStart = cs0.data();
  in.studentEnd = cs1.data();
  in.teacherStart = ct0.data();
  in.teacherEnd = ct1.data();
  in.flags = flags.data();
  in.chunks = flags.size();
  in.logprobs = lp.data();
  in.topkIds = topIds.data();
  in.topkLogprobs = topLp.data();
  in.K = K;
  std::string err;
  bool equal = false;
  double worst = 0;
  size_t nnz = 0;
  try {
    project::CheckProjectInput(tables, in);
    project::RowPlan plan;
    project::PlanRows(tables, in, plan);
    project::RowSlots cpu, gpu;
    project::RunRows(tables, in, plan, Device::kCpu, cpu);
    project::RunRows(tables, in, plan, Device::kCuda, gpu);
    auto csr = [&](const project::RowSlots& rows, std::vector<int32_t>& rowPtr, std::vector<int32_t>& ids, std::vector<float>& probs,
                   std::vector<float>& tail, std::vector<uint8_t>& msk) {
      const int64_t e = project::CsrEntries(rows);
      rowPtr.resize(in.n + 1);
      ids.resize(e);
      probs.resize(e);
      tail.resize(in.n);
      msk.resize(in.n);
      project::WriteCsr(plan, rows, project::CsrView{rowPtr.data(), ids.data(), probs.data(), tail.data(), msk.data()});
    };
    std::vector<int32_t> rp1, id1, rp2, id2;
    std::vector<float> p1, t1, p2, t2;
    std::vector<uint8_t> m1, m2;
    csr(cpu, rp1, id1, p1, t1, m1);
    csr(gpu, rp2, id2, p2, t2, m2);
    nnz = id1.size();
    // Equal bits on the host and the device (common/portable_exp.h), not within a tolerance.
    equal = rp1 == rp2 && id1 == id2 && t1 == t2 && m1 == m2 && std::memcmp(p1.data(), p2.data(), p1.size() * 4) == 0;
    project::ReferenceCsr ref;
    project::SpanProjectionReference(student, teacher, nullptr, 0, eos, 1, student.vocab() - 1, in, ref);
    if (ref.ids != id2 || ref.rowPtr != rp2) err = "the CUDA rows list other ids than the reference";
    std::vector<double> g2(p2.begin(), p2.end()), gt(t2.begin(), t2.end());
    worst = std::max(WorstRatio(g2, ref.probs, gpu_check::projectionProbs), WorstRatio(gt, ref.tail, gpu_check::projectionTail));

    // Handed to the divergence on the device vs through the host CSR: the same bits.
    project::cuda::DeviceCsr dcsr;
    const TokenTable& tt2 = *tables.teacher;
    const project::TokenBytesView tb{tt2.bytes.data(), tt2.offsets.data(), tt2.special.data()};
    const project::TeacherView tv{in.teacherIds, in.logprobs, in.topkIds, in.topkLogprobs, in.K};
    project::cuda::HostTables host{&tables.trie, tb, static_cast<size_t>(tt2.vocab()), tt2.bytes.size(), tables.specialMap.data()};
    project::cuda::RowsArgs ra{plan.tasks.data(), in.n, tv, in.m, plan.slots, nullptr, nullptr, nullptr};
    if (err.empty()) err = project::cuda::ProjectRowsToDevice(&tables.device, host, ra, plan.mask.data(), &dcsr);
    if (err.empty()) {  // the device CSR, read back: the rows WriteCsr wrote on the host, bit for bit
      const size_t rows = in.n, slots = static_cast<size_t>(plan.slots);
      std::vector<int32_t> rb(rows), re(rows), ids(slots);
      std::vector<float> pr(slots), tl(rows);
      std::vector<uint8_t> mk(rows);
      for (auto [dst, src, bytes] : {std::tuple<void*, const void*, size_t>{rb.data(), dcsr.rowBegin, rows * 4}, {re.data(), dcsr.rowEnd, rows * 4},
                                     {ids.data(), dcsr.ids, slots * 4}, {pr.data(), dcsr.probs, slots * 4}, {tl.data(), dcsr.tail, rows * 4},
                                     {mk.data(), dcsr.mask, rows}})
        if (err.empty() && bytes && cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost) != cudaSuccess) err = "cudaMemcpy of the device CSR failed";
      for (size_t j = 0; j < rows && err.empty(); ++j) {
        const int32_t n = re[j] - rb[j];
        if (rb[j] != plan.tasks[j].at || n != rp2[j + 1] - rp2[j] || tl[j] != t2[j] || mk[j] != m2[j] ||
            !std::equal(ids.begin() + rb[j], ids.begin() + re[j], id2.begin() + rp2[j]) ||
            std::memcmp(pr.data() + rb[j], p2.data() + rp2[j], static_cast<size_t>(n) * 4) != 0)
          err = "the device CSR differs from the host CSR at row " + std::to_string(j);
      }
    }
    if (err.empty() && handOff) {
      const size_t rows = in.n, vocab = static_cast<size_t>(tables.outputSize);
      const std::vector<float> logits = RandomLogits(rows, vocab, seed + 9);
      std::vector<float> gHost(rows * vocab), gDev(rows * vocab);
      std::vector<double> lHost(rows), lDev(rows);
      loss::SparseDivergenceArgs a;
      a.logits = loss::LogitsArg{logits.data(), false, rows, vocab};
      a.rowPtr = rp2.data();
      a.ids = id2.data();
      a.probs = p2.data();
      a.tail = t2.data();
      a.nnz = id2.size();
      a.mask = m2.data();
      a.params.kind = loss::kForwardKL;
      const size_t kept = loss::CountKept(m2.data(), rows);
      int64_t bad = -1;
      a.grad = gHost.data();
      err = loss::cuda::SparseDivergence(a, loss::RowOutputs{kept ? 1.0 / kept : 0.0, lHost.data(), nullptr}, &bad);
      loss::cuda::DeviceTargets dt;
      dt.rowBegin = dcsr.rowBegin;
      dt.rowEnd = dcsr.rowEnd;
      dt.ids = dcsr.ids;
      dt.probs = dcsr.probs;
      dt.tail = dcsr.tail;
      dt.mask = dcsr.mask;
      dt.hostBegin = dcsr.hostBegin.data();
      dt.hostMask = plan.mask.data();
      a.grad = gDev.data();
      if (err.empty()) err = loss::cuda::SparseDivergenceDeviceTargets(a, dt, loss::RowOutputs{kept ? 1.0 / kept : 0.0, lDev.data(), nullptr}, &bad);
      if (err.empty() && !(gHost == gDev && lHost == lDev)) err = "the divergence on the device-resident projection differs from the host round trip";
    }
  } catch (const Error& e) {
    err = e.code + ": " + e.what();
  }
  Report(name, err.empty() && equal && worst <= 1,
         err.empty() ? std::to_string(in.n) + " rows, " + std::to_string(nnz) + " entries: CPU and CUDA CSR " + (equal ? "equal bits" : "DIFFER") +
                           ", vs reference " + Fmt("%.2g", worst) + " of projectionProbs/Tail" + ", device CSR = host CSR" + (handOff ? ", divergence on it = via the host" : "")
                     : err);
}

// PortableExp: the bits the span projection relies on, against the C library within 1 ulp.
void RunPortableExp() {
  const std::string name = "PortableExp within 1 ulp of exp";
  if (!Selected(name)) return;
  Rng r(3);
  int64_t worst = 0;
  for (int i = 0; i < 200000; ++i) {
    const double x = i % 2 ? -745 * r.Uniform() : -std::ldexp(r.Uniform(), -(i % 50));
    const double a = PortableExp(x), b = std::exp(x);
    int64_t ia, ib;
    std::memcpy(&ia, &a, 8);
    std::memcpy(&ib, &b, 8);
    worst = std::max<int64_t>(worst, ia > ib ? ia - ib : ib - ia);
  }
  Report(name, worst <= 1, "worst " + std::to_string(worst) + " ulp over 200,000 arguments in [-745, 0]");
}

// ---------------------------------------------------------------- bench (device only)

void RunBench() {
#if !defined(XOPD_CUDA_EMULATION)
  std::printf("\n== bench (device-resident: fused vs unfused vs device copy; end to end with transfers)\n");
  for (const size_t vocab : {32000, 151936}) {
    for (const bool bf16 : {false, true}) {
      const size_t rows = 4096;
      loss::cuda::DeviceTiming t;
      const std::string e = loss::cuda::BenchSparseDivergence(rows, vocab, bf16, 32, 20, &t);
      if (!e.empty()) {
        std::printf("bench vocab %zu: %s\n", vocab, e.c_str());
        continue;
      }
      const double bytes = 2.0 * rows * vocab * (bf16 ? 2 : 4);  // logits read + gradient written
      std::printf("device %s vocab %6zu rows %zu %s: fused %.3f ms (%.0f GB/s), unfused %.3f ms (x%.2f), D2D copy %.3f ms (fused/copy %.2f)\n",
                  t.device.c_str(), vocab, rows, bf16 ? "bf16" : "fp32", t.fusedSeconds * 1e3, bytes / t.fusedSeconds / 1e9,
                  t.unfusedSeconds * 1e3, t.unfusedSeconds / t.fusedSeconds, t.copySeconds * 1e3, t.fusedSeconds / t.copySeconds);
    }
  }
  for (const size_t vocab : {32000, 151936}) {
    const size_t rows = 2048;
    const std::vector<float> l = RandomLogits(rows, vocab, 1);
    const Targets t = RandomTargets(rows, vocab, 32, 2);
    std::vector<float> g(rows * vocab);
    loss::SparseDivergenceArgs a;
    a.logits = loss::LogitsArg{l.data(), false, rows, vocab};
    a.rowPtr = t.rowPtr.data();
    a.ids = t.ids.data();
    a.probs = t.probs.data();
    a.tail = t.tail.data();
    a.nnz = t.ids.size();
    a.grad = g.data();
    for (const char* limitName : {"default limit", "64 MiB limit (many chunks)"}) {
      SetCudaWorkspaceLimit(std::strcmp(limitName, "default limit") == 0 ? 0 : size_t{64} << 20);
      double best[2] = {1e9, 1e9};
      for (int dev = 0; dev < 2; ++dev)
        for (int it = 0; it < 3; ++it) {
          const auto t0 = std::chrono::steady_clock::now();
          try {
            loss::SparseDivergence(a, dev ? Device::kCuda : Device::kCpu);
          } catch (const Error& e) {
            std::printf("end to end: %s\n", e.what());
            break;
          }
          best[dev] = std::min(best[dev], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
      const double bytes = 2.0 * rows * vocab * 4;
      std::printf("end to end vocab %6zu rows %zu fp32, %s: CUDA %.1f ms (%.1f GB/s of logits + gradient, host to host), CPU %.1f ms, CUDA/CPU %.2f\n",
                  vocab, rows, limitName, best[1] * 1e3, bytes / best[1] / 1e9, best[0] * 1e3, best[1] / best[0]);
    }
    SetCudaWorkspaceLimit(0);
  }
#endif
}

// ---------------------------------------------------------------- the cases

std::vector<DivergenceCase> DivergenceCases() {
  std::vector<DivergenceCase> v;
  auto add = [&](DivergenceCase c) { v.push_back(std::move(c)); };
  // (rows stay small under the emulation: every block runs 512 fibers)
  const size_t R = kEmulated ? 3 : 13;
  for (const bool bf16 : {false, true}) {
    const char* dt = bf16 ? "bf16" : "fp32";
    DivergenceCase c;
    c.bf16 = bf16;
    c.temperature = 0.8;
    c.beta = 0.4;
    c.name = std::string("divergence vocab 4099 (scalar loads) ") + dt;
    c.rows = R + 1, c.vocab = 4099, c.support = 40;
    add(c);
    c.name = std::string("divergence vocab 32000 ") + dt;
    c.vocab = 32000;
    c.quick = !bf16;
    add(c);
    c.name = std::string("divergence vocab 151936 ") + dt;
    c.rows = kEmulated ? 2 : 5, c.vocab = 151936, c.quick = false;
    add(c);
    c.name = std::string("divergence vocab 262144 ") + dt;
    c.vocab = 262144;
    c.kinds = {"jsd"};
    c.quick = !bf16;
    add(c);
    c.name = std::string("divergence vocab 400000 (shared mask > 48 KiB) ") + dt;
    c.vocab = 400000, c.rows = 2;
    c.kinds = {"forward-kl"};
    c.quick = false;
    add(c);
  }
  DivergenceCase c;
  c.name = "divergence support 1500 > block";
  c.rows = R, c.vocab = 32000, c.support = 1500, c.kinds = {"forward-kl", "jsd"};
  add(c);
  c = DivergenceCase();
  c.name = "divergence support = vocab (300)";
  c.rows = R, c.vocab = 300, c.support = 300, c.maskEvery = 0, c.kinds = {"forward-kl", "reverse-kl"};
  add(c);
  c = DivergenceCase();
  c.name = "divergence vocab 100 < block";
  c.rows = R + 2, c.vocab = 100, c.support = 7;
  add(c);
  c = DivergenceCase();
  c.name = "divergence all rows masked";
  c.rows = R, c.vocab = 1000, c.support = 5, c.maskEvery = -1, c.kinds = {"jsd"};
  add(c);
  c = DivergenceCase();
  c.name = "divergence in-place (grad over logits) fp32";
  c.rows = R, c.vocab = 4096, c.inPlace = true, c.kinds = {"reverse-kl"}, c.workspaceLimit = 3 * (2 * 4096 * 4 + 64) + 3 * 40 * 40;
  add(c);
  c.name = "divergence in-place (grad over logits) bf16";
  c.bf16 = true, c.vocab = 4104;
  add(c);
  c = DivergenceCase();
  c.name = "divergence bf16, temperature 0.25, other underflows";
  c.rows = R, c.vocab = 32000, c.bf16 = true, c.temperature = 0.25, c.lift = 60, c.support = 4, c.compareCpu = true;
  add(c);
  for (const float lift : {150.0f, 800.0f}) {
    c = DivergenceCase();
    c.name = "divergence student " + std::to_string(static_cast<int>(lift)) + " logits above the rest";
    c.rows = R, c.vocab = 32000, c.lift = lift, c.support = 4, c.compareCpu = true;
    // 800 below, e^-800 is 0 even in float64: the reference's forward KL is infinite where the
    // kernels floor p at 1e-300 (loss_math.h kTinyP); both CUDA and the CPU do, so they are compared.
    c.cpuOnly = lift > 700;
    add(c);
  }
  c = DivergenceCase();
  c.name = "divergence rows 70000 > 65535";
  c.rows = 70000, c.vocab = 8, c.support = 3, c.kinds = {"jsd"};
  if (kEmulated) c.blocks = {0, 1, 65535, 65536, 69999};
  add(c);
  return v;
}

std::vector<PolicyCase> PolicyCases() {
  std::vector<PolicyCase> v;
  const size_t R = kEmulated ? 3 : 13;
  for (const bool bf16 : {false, true})
    for (const size_t vocab : {4099, 32000, 151936}) {
      PolicyCase c;
      c.bf16 = bf16;
      c.vocab = vocab;
      c.rows = vocab > 100000 && kEmulated ? 2 : R + 1;
      c.quick = vocab != 151936;
      c.name = "policy gradient vocab " + std::to_string(vocab) + (bf16 ? " bf16" : " fp32") + " PPO";
      v.push_back(c);
      c.ppo = false;
      c.quick = false;
      c.name = "policy gradient vocab " + std::to_string(vocab) + (bf16 ? " bf16" : " fp32") + " plain";
      if (vocab == 32000) v.push_back(c);
    }
  PolicyCase c;
  c.name = "policy gradient vocab 100 < block, in-place";
  c.vocab = 100, c.rows = R + 2, c.inPlace = true;
  v.push_back(c);
  c = PolicyCase();
  c.name = "policy gradient all rows masked";
  c.vocab = 1000, c.rows = R, c.maskEvery = -1;
  v.push_back(c);
  c = PolicyCase();
  c.name = "policy gradient rows 70000 > 65535";
  c.vocab = 8, c.rows = 70000;
  if (kEmulated) c.blocks = {0, 65535, 65536, 69999};
  v.push_back(c);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") gOpt.quick = true;
    else if (a == "--bench") gOpt.bench = true;
    else if (a == "--list") gOpt.list = true;
    else if (a == "--only" && i + 1 < argc) {
      std::string list = argv[++i];
      for (size_t at = 0; at <= list.size();) {
        const size_t bar = std::min(list.find('|', at), list.size());
        if (bar > at) gOpt.only.push_back(list.substr(at, bar - at));
        at = bar + 1;
      }
    }
    else {
      std::fprintf(stderr, "usage: %s [--only SUBSTRING[|SUBSTRING...]] [--quick] [--bench] [--list]\n", argv[0]);
      return 2;
    }
  }
  const CudaInfo ci = QueryCuda();
  if (ci.devices == 0) {
    std::fprintf(stderr, "no usable CUDA device: %s\n", ci.error.c_str());
    return 3;
  }
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  std::printf("xopd GPU check on %s (%s); tolerances from test/helpers/tolerances.ts\n", prop.name, kEmulated ? "emulated" : "device");
  if (gOpt.list) {
    for (const auto& c : DivergenceCases()) std::printf("%s\n", c.name.c_str());
    for (const auto& c : PolicyCases()) std::printf("%s\n", c.name.c_str());
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (gOpt.bench) {  // the bench alone (scripts/gpu-check.sh runs the cases first)
    RunBench();
    ReleaseCudaWorkspaces();
    return 0;
  }
  RunPortableExp();
  for (const DivergenceCase& c : DivergenceCases())
    if (!gOpt.quick || c.quick) RunDivergenceCase(c);
  for (const PolicyCase& c : PolicyCases())
    if (!gOpt.quick || c.quick) RunPolicyCase(c);
  RunHugeCase();
  RunDeterminism();
#if defined(__SANITIZE_THREAD__)
  RunProjectionCase(1500, 8, 41, false);
#else
  RunProjectionCase(1500, 8, 41, true);
#endif
  if (!gOpt.quick) RunProjectionCase(12000, 20, 42, !kEmulated);
#if defined(XOPD_CUDA_EMULATION)
  RunPipelineChecks();
#endif
  ReleaseCudaWorkspaces();
  std::printf("checks took %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  std::printf("%d passed, %d failed\n", gPassed, gFailed);
  return gFailed ? 1 : 0;
}
