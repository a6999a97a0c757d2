#include "loss/row_ops.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/errors.h"
#include "loss/loss_math.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define XOPD_X86_SIMD 1
#include <immintrin.h>
#define XOPD_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace xopd {
namespace loss {
namespace {

// 2048 floats = 8 KiB: a block is read from memory once for its max, then again from L1 for exp.
constexpr size_t kBlock = kRowBlock;
constexpr float kLog2e = 1.44269504088896341f;
// One-constant range reduction r = x - n ln2 (one FMA): the error n * 1.9e-9 stays below an ulp
// of the result for |n| < 30, i.e. wherever exp(x) is not negligible next to exp(0) = 1.
constexpr float kLn2 = 0.693147182f;
// Inputs are clamped here, so p * 2^n stays a normal float (n >= -125); exp(-86) ~ 4e-38 is as good as 0.
constexpr float kExpMin = -86.0f;
// t = x * log2(e) + kMagic rounds x * log2(e) to an integer n held in t's low mantissa bits:
// t - kMagic is n as a float, and (bits of t) << 23 is n << 23 (mod 2^32), which added to the
// bits of p multiplies p by 2^n (an integer add instead of a multiply on the busy FMA ports).
constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
// e^r on [-ln2/2, ln2/2], degree 5, fitted for minimax relative error. With the reduction above:
// at most 2.3e-7 (4 ulp), 6e-8 on average, over x in [-30, 0] in fp32 (the tests bound the kernels
// against float64 references at 2e-5).
constexpr float kC1 = 9.999997072e-01f, kC2 = 4.999914952e-01f, kC3 = 1.666763623e-01f, kC4 = 4.189793029e-02f,
                kC5 = 8.290312652e-03f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Called after each block of pass 1 (the row pipeline writes the previous row's block there).
struct BlockHook {
  void (*fn)(void* ctx, size_t block) = nullptr;
  void* ctx = nullptr;
  void operator()(size_t block) const {
    if (fn) fn(ctx, block);
  }
};

inline float Load(const float* p) { return *p; }
inline float Load(const uint16_t* p) { return Bf16ToF32(*p); }
inline void Store(float* p, float v) { *p = v; }
inline void Store(uint16_t* p, float v) { *p = F32ToBf16(v); }

// ---------------- portable scalar path ----------------

template <typename T>
bool MaxSumScalar(const T* x, size_t n, float scale, const int32_t* skip, size_t nSkip, float* maxOut, double* sumOut,
                  float* keep, float* blockMax, BlockHook hook) {
  float m = kNegInf;
  double sum = 0.0;
  size_t s = 0;
  float buf[kBlock];
  for (size_t b0 = 0; b0 < n; b0 += kBlock) {
    const size_t len = std::min(kBlock, n - b0);
    float bm = kNegInf, check[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < len; ++i) {
      const float v = Load(x + b0 + i);
      check[i & 7] += v;  // NaN or +-inf anywhere makes this sum non-finite
      bm = std::max(bm, v);
    }
    bm *= scale;  // scale > 0: max(x) * scale = max(x * scale)
    float c = bm;
    for (float v : check) c += v;
    if (!(c - c == 0.0f)) return false;
    size_t sEnd = s;
    while (sEnd < nSkip && static_cast<size_t>(skip[sEnd]) < b0 + len) ++sEnd;
    if (sEnd != s) {  // the max is over the tokens summed, so blank the skipped ones first
      for (size_t i = 0; i < len; ++i) buf[i] = Load(x + b0 + i) * scale;
      for (size_t k = s; k < sEnd; ++k) buf[skip[k] - b0] = kNegInf;
      bm = kNegInf;
      for (size_t i = 0; i < len; ++i) bm = std::max(bm, buf[i]);
    }
    if (bm > m) {
      sum *= std::exp(static_cast<double>(m) - static_cast<double>(bm));
      m = bm;
    }
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float* kb = keep ? keep + b0 : nullptr;
    if (keep) blockMax[b0 / kBlock] = m;
    if (m == kNegInf) {
      // every token so far is skipped: nothing to sum
      if (kb) std::fill(kb, kb + len, 0.0f);
    } else if (sEnd == s) {
      for (size_t i = 0; i < len; ++i) {
        const float e = ExpNeg(Load(x + b0 + i) * scale - m);
        acc[i & 7] += e;
        if (kb) kb[i] = e;
      }
    } else {
      for (size_t i = 0; i < len; ++i) {
        const float e = ExpNeg(buf[i] - m);
        acc[i & 7] += e;
        if (kb) kb[i] = e;
      }
    }
    s = sEnd;
    float bs = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    sum += bs;
    hook(b0 / kBlock);
  }
  *maxOut = m;
  *sumOut = sum;
  return true;
}

// MaxSumScalar with the skipped tokens given as a bitmap (bit u of skipBits set: skip u).
template <typename T>
bool MaxSumBitsScalar(const T* x, size_t n, float scale, const uint64_t* skipBits, float* maxOut, double* sumOut, float* keep,
                      float* blockMax, BlockHook hook) {
  auto skipped = [&](size_t u) { return (skipBits[u >> 6] >> (u & 63)) & 1u; };
  float m = kNegInf;
  double sum = 0.0;
  for (size_t b0 = 0; b0 < n; b0 += kBlock) {
    const size_t len = std::min(kBlock, n - b0);
    float bm = kNegInf, check = 0.0f;
    for (size_t i = 0; i < len; ++i) {
      const float v = Load(x + b0 + i) * scale;
      check += v;  // NaN or +-inf anywhere, skipped or not, makes this non-finite
      if (!skipped(b0 + i)) bm = std::max(bm, v);
    }
    if (!(check - check == 0.0f)) return false;
    if (bm > m) {
      sum *= std::exp(static_cast<double>(m) - static_cast<double>(bm));
      m = bm;
    }
    float* kb = keep ? keep + b0 : nullptr;
    if (keep) blockMax[b0 / kBlock] = m;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < len; ++i) {
      const float e = m == kNegInf || skipped(b0 + i) ? 0.0f : ExpNeg(Load(x + b0 + i) * scale - m);
      acc[i & 7] += e;
      if (kb) kb[i] = e;
    }
    sum += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    hook(b0 / kBlock);
  }
  *maxOut = m;
  *sumOut = sum;
  return true;
}

template <typename T>
void ScaledExpScalar(const T* x, size_t n, float scale, float m, float c, T* out) {
  for (size_t i = 0; i < n; ++i) Store(out + i, ExpNeg(Load(x + i) * scale - m) * c);
}

template <typename T>
void ScaleKeptScalar(const float* keep, size_t n, float f, T* out) {
  for (size_t i = 0; i < n; ++i) Store(out + i, keep[i] * f);
}

// ---------------- AVX2 + FMA path ----------------
#ifdef XOPD_X86_SIMD

XOPD_AVX2 inline __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
XOPD_AVX2 inline __m256 Load8(const uint16_t* p) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

XOPD_AVX2 inline __m128i PackBf16(__m256 v) {
  __m256i u = _mm256_castps_si256(v);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  u = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
  __m256i packed = _mm256_packus_epi32(u, u);  // per 128-bit lane: [lo4, lo4 | hi4, hi4]
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08));
}

XOPD_AVX2 inline void Store8(float* p, __m256 v, bool stream) {
  if (stream) _mm256_stream_ps(p, v);
  else _mm256_storeu_ps(p, v);
}
XOPD_AVX2 inline void Store8(uint16_t* p, __m256 v, bool stream) {
  __m128i h = PackBf16(v);
  if (stream) _mm_stream_si128(reinterpret_cast<__m128i*>(p), h);
  else _mm_storeu_si128(reinterpret_cast<__m128i*>(p), h);
}

// exp(x) for x <= 0 (a tiny positive rounding excess is fine); x below kExpMin (and -inf) -> ~0.
XOPD_AVX2 inline __m256 ExpNeg8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(kExpMin));
  const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), _mm256_set1_ps(kMagic));
  const __m256 n = _mm256_sub_ps(t, _mm256_set1_ps(kMagic));
  const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2), x);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(kC5), r, _mm256_set1_ps(kC4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_castps_si256(t), 23)));
}

// x * scale - m; at temperature 1 a plain subtraction keeps the multiply off the busy FMA ports.
template <bool kUnit>
XOPD_AVX2 inline __m256 Shift8(__m256 x, __m256 scale, __m256 m) {
  return kUnit ? _mm256_sub_ps(x, m) : _mm256_fmsub_ps(x, scale, m);
}

XOPD_AVX2 inline float HMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
XOPD_AVX2 inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Sum of exp(src[i] * scale - m) over a block of len elements (len a multiple of 8 except at the row end).
// With kKeep, each exp is also stored to keep[i] (32-byte aligned), for pass 2 to reuse.
// skip (sorted ids, nSkip of them, at offset id - base in this block): those exps count as 0, in the
// sum and in keep.
// next: the row's next block (type N), prefetched while the exps keep the core busy; otherwise the
// loads of the next max pass would only start once these are done. (Prefetches never fault.)
template <bool kUnit, bool kKeep, typename T, typename N>
__attribute__((noinline)) XOPD_AVX2 float BlockSumExp(const T* src, size_t len, __m256 scale, __m256 m, float* keep, const N* next,
                                                      const int32_t* skip, size_t nSkip, size_t base) {
  // One accumulator: the exp constants fill the 16 ymm registers, and a second accumulator would
  // live on the stack (a store-forwarding chain per add); the adds are not the bottleneck.
  __m256 a0 = _mm256_setzero_ps();
  size_t i = 0, k = 0;
  for (; i + 8 <= len; i += 8) {
    _mm_prefetch(reinterpret_cast<const char*>(next + i), _MM_HINT_T0);
    __m256 e = ExpNeg8(Shift8<kUnit>(Load8(src + i), scale, m));
    if (k < nSkip && skip[k] - base < i + 8) {
      // Lanes of skipped ids: zero them (a lane whose bit is set in `lanes` keeps nothing).
      int lanes = 0;
      for (; k < nSkip && skip[k] - base < i + 8; ++k) lanes |= 1 << (skip[k] - base - i);
      const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
      const __m256i hit = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(lanes), bit), bit);
      e = _mm256_andnot_ps(_mm256_castsi256_ps(hit), e);
    }
    if (kKeep) _mm256_store_ps(keep + i, e);
    a0 = _mm256_add_ps(a0, e);
  }
  float s = HSum(a0);
  const float sc = kUnit ? 1.0f : _mm256_cvtss_f32(scale), mm = _mm256_cvtss_f32(m);
  for (; i < len; ++i) {
    float e = ExpNeg(Load(src + i) * sc - mm);
    if (k < nSkip && skip[k] - base == i) {
      e = 0.0f;
      ++k;
    }
    if (kKeep) keep[i] = e;
    s += e;
  }
  return s;
}

template <bool kKeep, typename T, typename N>
XOPD_AVX2 float BlockSumExpAny(const T* src, size_t len, float scale, __m256 m, float* keep, const N* next,
                               const int32_t* skip = nullptr, size_t nSkip = 0, size_t base = 0) {
  const __m256 vscale = _mm256_set1_ps(scale);
  return scale == 1.0f ? BlockSumExp<true, kKeep>(src, len, vscale, m, keep, next, skip, nSkip, base)
                       : BlockSumExp<false, kKeep>(src, len, vscale, m, keep, next, skip, nSkip, base);
}

template <typename T>
XOPD_AVX2 bool MaxSumAvx2(const T* x, size_t n, float scale, const int32_t* skip, size_t nSkip, float* maxOut, double* sumOut,
                          float* keep, float* blockMax, BlockHook hook) {
  const __m256 vscale = _mm256_set1_ps(scale);
  float m = kNegInf;
  double sum = 0.0;
  size_t s = 0;
  alignas(32) float buf[kBlock];
  for (size_t b0 = 0; b0 < n; b0 += kBlock) {
    const size_t len = std::min(kBlock, n - b0);
    const T* src = x + b0;
    // Max of the raw values (scale > 0 commutes with max) and their sum: NaN or +-inf anywhere
    // makes the sum non-finite, which is cheaper to test than every element.
    __m256 m0 = _mm256_set1_ps(kNegInf), m1 = m0, m2 = m0, m3 = m0;
    __m256 c0 = _mm256_setzero_ps(), c1 = c0;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
      const __m256 v0 = Load8(src + i), v1 = Load8(src + i + 8), v2 = Load8(src + i + 16), v3 = Load8(src + i + 24);
      m0 = _mm256_max_ps(m0, v0);
      m1 = _mm256_max_ps(m1, v1);
      m2 = _mm256_max_ps(m2, v2);
      m3 = _mm256_max_ps(m3, v3);
      c0 = _mm256_add_ps(c0, _mm256_add_ps(v0, v1));
      c1 = _mm256_add_ps(c1, _mm256_add_ps(v2, v3));
    }
    for (; i + 8 <= len; i += 8) {
      const __m256 v = Load8(src + i);
      m0 = _mm256_max_ps(m0, v);
      c0 = _mm256_add_ps(c0, v);
    }
    float bm = HMax(_mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
    float check = HSum(_mm256_add_ps(c0, c1));
    for (; i < len; ++i) {
      const float v = Load(src + i);
      check += v;
      bm = std::max(bm, v);
    }
    bm *= scale;
    check += bm;
    if (!(check - check == 0.0f)) return false;
    size_t sEnd = s;
    while (sEnd < nSkip && static_cast<size_t>(skip[sEnd]) < b0 + len) ++sEnd;
    // A block holding skipped (support) ids: the max, like the sum, must be over the tokens summed.
    // With the max of all tokens, a support token far above the rest would make every exp
    // underflow (the caller rescales the sum in float64). When the block's max is not a skipped
    // token and the exps are kept, the exp loop zeroes the skipped lanes as it goes; otherwise the
    // block is copied with the skipped ids blanked.
    bool masked = false;
    if (sEnd != s && keep) {
      float skipMax = kNegInf;
      for (size_t k = s; k < sEnd; ++k) skipMax = std::max(skipMax, Load(src + (skip[k] - b0)));
      masked = skipMax * scale < bm;
    }
    if (sEnd != s && !masked) {
      size_t j = 0;
      __m256 bmax = _mm256_set1_ps(kNegInf);
      for (; j + 8 <= len; j += 8) _mm256_store_ps(buf + j, _mm256_mul_ps(Load8(src + j), vscale));
      for (; j < len; ++j) buf[j] = Load(src + j) * scale;
      for (size_t k = s; k < sEnd; ++k) buf[skip[k] - b0] = kNegInf;
      for (j = 0; j + 8 <= len; j += 8) bmax = _mm256_max_ps(bmax, _mm256_load_ps(buf + j));
      bm = HMax(bmax);
      for (; j < len; ++j) bm = std::max(bm, buf[j]);
    }
    if (bm > m) {
      sum *= std::exp(static_cast<double>(m) - static_cast<double>(bm));
      m = bm;
    }
    const __m256 vm = _mm256_set1_ps(m);
    float* kb = keep ? keep + b0 : nullptr;
    if (keep) blockMax[b0 / kBlock] = m;
    float bs;
    if (m == kNegInf) {
      bs = 0.0f;  // every token so far is skipped
      if (kb) std::fill(kb, kb + len, 0.0f);
    } else if (sEnd == s) {
      bs = kb ? BlockSumExpAny<true>(src, len, scale, vm, kb, src + len) : BlockSumExpAny<false>(src, len, scale, vm, kb, src + len);
    } else if (masked) {
      bs = BlockSumExpAny<true>(src, len, scale, vm, kb, src + len, skip + s, sEnd - s, b0);
    } else {
      const float* scaled = buf;
      bs = kb ? BlockSumExpAny<true>(scaled, len, 1.0f, vm, kb, src + len) : BlockSumExpAny<false>(scaled, len, 1.0f, vm, kb, src + len);
    }
    s = sEnd;
    sum += bs;
    hook(b0 / kBlock);
  }
  *maxOut = m;
  *sumOut = sum;
  return true;
}

// All-ones in the lanes of the skipped tokens u .. u+7 (u a multiple of 8) of a skip bitmap's bytes.
XOPD_AVX2 inline __m256 LaneMask8(const uint8_t* bytes, size_t u) {
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(bytes[u >> 3]), bit), bit));
}

// MaxSumAvx2 with the skipped tokens given as a bitmap (rows with many skipped tokens, such as the
// members of a large prefix group): a lane mask from one bitmap byte per 8 tokens, whatever the
// number skipped. The max, like the sum, is over the tokens not skipped.
template <bool kUnit, typename T>
XOPD_AVX2 bool MaxSumBitsAvx2(const T* x, size_t n, float scale, const uint64_t* skipBits, float* maxOut, double* sumOut, float* keep,
                              float* blockMax, BlockHook hook) {
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(skipBits);  // little-endian: byte k = tokens 8k .. 8k+7
  const __m256 vscale = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(kNegInf);
  auto skipped = [&](size_t u) { return (skipBits[u >> 6] >> (u & 63)) & 1u; };
  float m = kNegInf;
  double sum = 0.0;
  for (size_t b0 = 0; b0 < n; b0 += kBlock) {
    const size_t len = std::min(kBlock, n - b0);
    const T* src = x + b0;
    __m256 mx = ninf, c0 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
      const __m256 v = Load8(src + i);
      c0 = _mm256_add_ps(c0, v);
      mx = _mm256_max_ps(mx, _mm256_blendv_ps(v, ninf, LaneMask8(bytes, b0 + i)));
    }
    float bm = HMax(mx), check = HSum(c0);
    for (; i < len; ++i) {
      const float v = Load(src + i);
      check += v;
      if (!skipped(b0 + i)) bm = std::max(bm, v);
    }
    bm *= scale;
    check *= scale;
    if (!(check - check == 0.0f) || !(bm - bm == 0.0f || bm == kNegInf)) return false;
    if (bm > m) {
      sum *= std::exp(static_cast<double>(m) - static_cast<double>(bm));
      m = bm;
    }
    float* kb = keep ? keep + b0 : nullptr;
    if (keep) blockMax[b0 / kBlock] = m;
    float bs = 0.0f;
    if (m == kNegInf) {
      if (kb) std::fill(kb, kb + len, 0.0f);  // every token so far is skipped
    } else {
      const __m256 vm = _mm256_set1_ps(m);
      __m256 a0 = _mm256_setzero_ps();
      for (i = 0; i + 8 <= len; i += 8) {
        _mm_prefetch(reinterpret_cast<const char*>(src + len + i), _MM_HINT_T0);
        const __m256 e = _mm256_andnot_ps(LaneMask8(bytes, b0 + i), ExpNeg8(Shift8<kUnit>(Load8(src + i), vscale, vm)));
        if (kb) _mm256_storeu_ps(kb + i, e);
        a0 = _mm256_add_ps(a0, e);
      }
      bs = HSum(a0);
      for (; i < len; ++i) {
        const float e = skipped(b0 + i) ? 0.0f : ExpNeg(Load(src + i) * scale - m);
        if (kb) kb[i] = e;
        bs += e;
      }
    }
    sum += bs;
    hook(b0 / kBlock);
  }
  *maxOut = m;
  *sumOut = sum;
  return true;
}

template <bool kUnit, typename T>
XOPD_AVX2 void ScaledExpAvx2(const T* x, size_t n, float scale, float m, float c, T* out, bool stream) {
  const __m256 vscale = _mm256_set1_ps(scale), vm = _mm256_set1_ps(m), vc = _mm256_set1_ps(c);
  size_t i = 0;
  if (stream) {
    // Streaming stores need aligned addresses: scalar prologue up to a 32-byte boundary.
    const size_t want = sizeof(T) == 4 ? 32 : 16;  // 8 floats = 32 bytes, 8 bf16 = 16 bytes
    while (i < n && (reinterpret_cast<uintptr_t>(out + i) % want) != 0) {
      Store(out + i, ExpNeg(Load(x + i) * scale - m) * c);
      ++i;
    }
    if ((reinterpret_cast<uintptr_t>(out + i) % want) != 0) stream = false;  // odd element alignment
  }
  for (; i + 16 <= n; i += 16) {
    __m256 a = _mm256_mul_ps(ExpNeg8(Shift8<kUnit>(Load8(x + i), vscale, vm)), vc);
    __m256 b = _mm256_mul_ps(ExpNeg8(Shift8<kUnit>(Load8(x + i + 8), vscale, vm)), vc);
    Store8(out + i, a, stream);
    Store8(out + i + 8, b, stream);
  }
  for (; i + 8 <= n; i += 8) Store8(out + i, _mm256_mul_ps(ExpNeg8(Shift8<kUnit>(Load8(x + i), vscale, vm)), vc), stream);
  for (; i < n; ++i) Store(out + i, ExpNeg(Load(x + i) * scale - m) * c);
}

// out[i] = keep[i] * f over one block (keep 32-byte aligned).
template <typename T>
XOPD_AVX2 void ScaleKeptAvx2(const float* keep, size_t n, float f, T* out, bool stream) {
  const size_t want = sizeof(T) == 4 ? 32 : 16;  // streaming stores need 8 elements aligned this way
  size_t i = 0;
  if (stream) {
    // Peel to an aligned store address (every block: a block's length need not keep it).
    for (; i < n && reinterpret_cast<uintptr_t>(out + i) % want != 0; ++i) Store(out + i, keep[i] * f);
    if (reinterpret_cast<uintptr_t>(out + i) % want != 0) stream = false;  // odd element alignment
  }
  const __m256 vf = _mm256_set1_ps(f);
  for (; i + 16 <= n; i += 16) {
    Store8(out + i, _mm256_mul_ps(_mm256_loadu_ps(keep + i), vf), stream);
    Store8(out + i + 8, _mm256_mul_ps(_mm256_loadu_ps(keep + i + 8), vf), stream);
  }
  for (; i + 8 <= n; i += 8) Store8(out + i, _mm256_mul_ps(_mm256_loadu_ps(keep + i), vf), stream);
  for (; i < n; ++i) Store(out + i, keep[i] * f);
}

XOPD_AVX2 void ExpNegShiftedAvx2(float* x, const float* shift, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, ExpNeg8(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(shift + i))));
  for (; i < n; ++i) x[i] = ExpNeg(x[i] - shift[i]);
}

bool CpuHasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
bool CpuHasAvx2() { return false; }
#endif

std::atomic<int> g_useAvx2{-1};  // -1: not chosen yet

bool UseAvx2() {
  int v = g_useAvx2.load(std::memory_order_relaxed);
  if (v < 0) {
    v = CpuHasAvx2() ? 1 : 0;
    g_useAvx2.store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

}  // namespace

float ExpNeg(float x) {
  // Plain multiply-adds (std::fma would be a library call without hardware FMA); the reduction is
  // done in double here, as exact as the vector path's fused multiply-add.
  x = std::max(x, kExpMin);  // also maps -inf to kExpMin
  const float t = x * kLog2e + kMagic;
  const float n = t - kMagic;
  const float r = static_cast<float>(static_cast<double>(x) - static_cast<double>(n) * kLn2);
  const float p = ((((kC5 * r + kC4) * r + kC3) * r + kC2) * r + kC1) * r + 1.0f;
  uint32_t tb, pb;
  std::memcpy(&tb, &t, sizeof tb);
  std::memcpy(&pb, &p, sizeof pb);
  pb += tb << 23;
  float out;
  std::memcpy(&out, &pb, sizeof out);
  return out;
}

void ExpNegShifted(float* x, const float* shift, size_t n) {
#ifdef XOPD_X86_SIMD
  if (UseAvx2()) return ExpNegShiftedAvx2(x, shift, n);
#endif
  for (size_t i = 0; i < n; ++i) x[i] = ExpNeg(x[i] - shift[i]);
}

template <typename T>
bool RowMaxSumExp(const T* x, size_t n, float scale, const int32_t* skip, size_t nSkip, float* max, double* sum) {
#ifdef XOPD_X86_SIMD
  if (UseAvx2()) return MaxSumAvx2(x, n, scale, skip, nSkip, max, sum, nullptr, nullptr, BlockHook{});
#endif
  return MaxSumScalar(x, n, scale, skip, nSkip, max, sum, nullptr, nullptr, BlockHook{});
}

template <typename T>
void RowScaledExp(const T* x, size_t n, float scale, float max, float c, T* out, bool stream) {
#ifdef XOPD_X86_SIMD
  if (UseAvx2()) {
    if (scale == 1.0f) return ScaledExpAvx2<true>(x, n, scale, max, c, out, stream);
    return ScaledExpAvx2<false>(x, n, scale, max, c, out, stream);
  }
#endif
  (void)stream;
  ScaledExpScalar(x, n, scale, max, c, out);
}

// ---------------- the two-row pipeline ----------------

template <typename T>
RowPipeline<T>::RowPipeline(size_t n, bool stream) : n_(n), blocks_((n + kBlock - 1) / kBlock), stream_(stream) {
  for (Row& r : rows_) {
    r.storage.resize(n + 8);
    const uintptr_t at = reinterpret_cast<uintptr_t>(r.storage.data());
    r.exps = r.storage.data() + ((32 - at % 32) % 32) / sizeof(float);
    r.blockMax.resize(blocks_);
    r.factor.resize(blocks_);
  }
}

template <typename T>
void RowPipeline<T>::WriteBlock(Row& r, size_t b) {
  const size_t b0 = b * kBlock, len = std::min(kBlock, n_ - b0);
  bool stream = stream_, patchOut = false;
  if (!r.blockStart.empty() && r.blockStart[b + 1] > r.blockStart[b]) {
    // Block entries: the block is written as exps * factor, so an entry's kept exp becomes
    // value / factor (two roundings). Where that cannot be represented (factor 0 or tiny), the
    // block is written with cached stores and the entries stored after it.
    const double f = r.factor[b];
    patchOut = !(std::fabs(f) >= 1e-30);
    const double inv = patchOut ? 0.0 : 1.0 / f;
    for (uint32_t k = r.blockStart[b]; k < r.blockStart[b + 1] && !patchOut; ++k) {
      const double e = static_cast<double>(r.blockValues[k]) * inv;
      patchOut = !(std::fabs(e) <= 1e30);
      r.exps[r.blockCols[k]] = static_cast<float>(e);
    }
    if (patchOut) stream = false;
  }
#ifdef XOPD_X86_SIMD
  if (UseAvx2()) ScaleKeptAvx2(r.exps + b0, len, r.factor[b], r.out + b0, stream);
  else
#endif
    ScaleKeptScalar(r.exps + b0, len, r.factor[b], r.out + b0);
  if (patchOut)
    for (uint32_t k = r.blockStart[b]; k < r.blockStart[b + 1]; ++k) Store(r.out + r.blockCols[k], r.blockValues[k]);
}

template <typename T>
void RowPipeline<T>::FinishPending() {
  Row& p = rows_[1 - cur_];
  if (!p.out) return;
  for (; p.written < blocks_; ++p.written) WriteBlock(p, p.written);
  if (stream_) StoreFence();  // the streamed stores land before the entries below overwrite theirs
  for (const auto& [id, v] : p.fixes) Store(p.out + id, static_cast<float>(v));
  p.out = nullptr;
  p.blockStart.clear();
}

template <typename T>
bool RowPipeline<T>::MaxSumExp(const T* x, float scale, const int32_t* skip, size_t nSkip, float* max, double* sum,
                               const BlockEntries* gather, const uint64_t* skipBits) {
  Row& c = rows_[cur_];
  gatherRow_ = x;
  gather_ = gather;
  gatherScale_ = scale;
  // After each block of this row: its listed columns (the block is in L1), then the same block of
  // the pending row's gradient.
  BlockHook hook{[](void* ctx, size_t b) {
                   auto* self = static_cast<RowPipeline*>(ctx);
                   if (const BlockEntries* g = self->gather_)
                     for (uint32_t k = g->start[b]; k < g->start[b + 1]; ++k)
                       g->values[k] = Load(self->gatherRow_ + g->cols[k]) * self->gatherScale_;
                   Row& p = self->rows_[1 - self->cur_];
                   if (p.out && b == p.written) self->WriteBlock(p, p.written++);
                 },
                 this};
  bool ok;
#ifdef XOPD_X86_SIMD
  if (UseAvx2() && skipBits)
    ok = scale == 1.0f ? MaxSumBitsAvx2<true>(x, n_, scale, skipBits, max, sum, c.exps, c.blockMax.data(), hook)
                       : MaxSumBitsAvx2<false>(x, n_, scale, skipBits, max, sum, c.exps, c.blockMax.data(), hook);
  else if (UseAvx2())
    ok = MaxSumAvx2(x, n_, scale, skip, nSkip, max, sum, c.exps, c.blockMax.data(), hook);
  else
#endif
  if (skipBits)
    ok = MaxSumBitsScalar(x, n_, scale, skipBits, max, sum, c.exps, c.blockMax.data(), hook);
  else
    ok = MaxSumScalar(x, n_, scale, skip, nSkip, max, sum, c.exps, c.blockMax.data(), hook);
  gather_ = nullptr;
  if (ok) FinishPending();
  return ok;
}

template <typename T>
void RowPipeline<T>::Write(T* out, float max, double c) {
  Row& r = rows_[cur_];
  // exp(x - max) * c = exp(x - m_b) * [exp(m_b - max) * c]: one factor per block, in float64.
  for (size_t b = 0; b < blocks_; ++b) {
    const float mb = r.blockMax[b];
    r.factor[b] = (mb == kNegInf || c == 0.0) ? 0.0f : static_cast<float>(std::exp(static_cast<double>(mb) - static_cast<double>(max)) * c);
  }
  r.out = out;
  r.written = 0;
  r.fixes.clear();
  cur_ = 1 - cur_;  // the next row's pass 1 fills the other buffer and writes this one
}

template <typename T>
void RowPipeline<T>::Fix(int32_t id, double value) {
  rows_[1 - cur_].fixes.emplace_back(id, value);
}

template <typename T>
void RowPipeline<T>::FixBlocks(std::vector<int32_t>& cols, std::vector<uint32_t>& start, std::vector<float>& values) {
  Row& r = rows_[1 - cur_];
  r.blockCols.swap(cols);
  r.blockStart.swap(start);
  r.blockValues.swap(values);
}

template <typename T>
void RowPipeline<T>::Zero(T* out) {
  FinishPending();
  std::memset(out, 0, n_ * sizeof(T));
}

template <typename T>
void RowPipeline<T>::Flush() {
  FinishPending();
}

template <typename T>
void RowPipeline<T>::Reset() {
  for (Row& r : rows_) {
    r.out = nullptr;
    r.fixes.clear();
    r.blockStart.clear();
  }
}

template class RowPipeline<float>;
template class RowPipeline<uint16_t>;

void StoreFence() {
#ifdef XOPD_X86_SIMD
  _mm_sfence();
#endif
}

template bool RowMaxSumExp<float>(const float*, size_t, float, const int32_t*, size_t, float*, double*);
template bool RowMaxSumExp<uint16_t>(const uint16_t*, size_t, float, const int32_t*, size_t, float*, double*);
template void RowScaledExp<float>(const float*, size_t, float, float, float, float*, bool);
template void RowScaledExp<uint16_t>(const uint16_t*, size_t, float, float, float, uint16_t*, bool);

std::string SetSimd(const std::string& name) {
  if (name == "scalar") g_useAvx2.store(0);
  else if (name == "avx2") g_useAvx2.store(CpuHasAvx2() ? 1 : 0);
  else if (name == "auto") g_useAvx2.store(-1);
  else throw Error("E_ARG_VALUE", "simd must be 'auto', 'avx2' or 'scalar', got '" + name + "'");
  return ActiveSimd();
}

std::string ActiveSimd() { return UseAvx2() ? "avx2" : "scalar"; }

}  // namespace loss
}  // namespace xopd
