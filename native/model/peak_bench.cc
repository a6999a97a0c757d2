// The CPU's practical peak for the GEMM's instruction mix: independent FMA chains on every worker.
// The model bench reports achieved FLOP/s as a share of this, measured in the same run.
#include "model/peak_bench.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "common/threads.h"
#include "model/gemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define XOPD_HAVE_AVX2_PATH 1
#endif

namespace xopd {
namespace model {
namespace {

#ifdef XOPD_HAVE_AVX2_PATH
// 12 chains hide the FMA latency on two ports; 192 flops per iteration.
__attribute__((target("avx2,fma"))) float ChainsAvx2(long iters, float seed) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(seed + i);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}
#endif

// Portable fallback: 8 chains of 16 lanes of multiply-add the compiler vectorises.
float ChainsGeneric(long iters, float seed) {
  float acc[8][16];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 16; ++j) acc[i][j] = seed + i + j;
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 16; ++j) acc[i][j] = acc[i][j] * 0.999999f + 1e-7f;
  float s = 0;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 16; ++j) s += acc[i][j];
  return s;
}

}  // namespace

PeakResult MeasurePeak(double seconds) {
  const bool avx2 = std::string(GemmKernelName()) == "avx2-fma";
  const double flopsPerIter = avx2 ? 192.0 : 256.0;
  auto run = [&](long iters, float seed) {
#ifdef XOPD_HAVE_AVX2_PATH
    if (avx2) return ChainsAvx2(iters, seed);
#endif
    return ChainsGeneric(iters, seed);
  };
  const int workers = ThreadCount();
  long iters = 1 << 16;
  volatile float sink = 0;
  for (;;) {
    std::vector<float> outs(workers, 0.f);
    const auto t0 = std::chrono::steady_clock::now();
    ParallelFor(workers, [&](size_t b, size_t e, int) {
      for (size_t w = b; w < e; ++w) outs[w] = run(iters, static_cast<float>(w));
    });
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (float o : outs) sink = sink + o;
    if (dt >= seconds || iters > (1L << 40)) {
      PeakResult r;
      r.flops = flopsPerIter * iters * workers / dt;
      r.threads = workers;
      r.kernel = avx2 ? "avx2-fma" : "generic";
      return r;
    }
    iters = static_cast<long>(iters * (dt > 0 ? std::max(2.0, std::min(16.0, seconds / dt * 1.1)) : 16.0));
  }
}

}  // namespace model
}  // namespace xopd
