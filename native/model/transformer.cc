#include "model/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common/errors.h"
#include "common/threads.h"

namespace xopd {
namespace model {

namespace {
template <typename T>
void Grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}
}  // namespace

Transformer::Transformer(const Config& c) : cfg_(c), layout_(MakeLayout(c)) {
  rope_.Build(c.maxSeq, c.headDim(), c.ropeTheta);
  params_.assign(layout_.total, 0.f);
  grads_.assign(layout_.total, 0.f);
  m_.assign(layout_.total, 0.f);
  v_.assign(layout_.total, 0.f);
  const int d = c.dim;
  embed_ = Mat{layout_.embed, c.vocab, d, {}, {}};
  for (const LayerOffsets& o : layout_.layer) {
    wqkv_.push_back(Mat{o.wqkv, 3 * d, d, {}, {}});
    wo_.push_back(Mat{o.wo, d, d, {}, {}});
    wgu_.push_back(Mat{o.wgu, G(), d, {}, {}});
    wdown_.push_back(Mat{o.wdown, d, c.hidden, {}, {}});
  }
  decayMask_.assign(layout_.total, 0);
  for (const Tensor& t : layout_.tensors)
    if (t.decay) std::fill(decayMask_.begin() + t.offset, decayMask_.begin() + t.offset + t.size(), 1);
}

void Transformer::ParamsChanged() {
  embed_.fwdOk = embed_.bwdOk = false;
  for (auto* v : {&wqkv_, &wo_, &wgu_, &wdown_})
    for (Mat& m : *v) m.fwdOk = m.bwdOk = false;
  train_.ready = false;  // activations of old weights no longer match
}

void Transformer::InitParams(uint64_t seed) {
  Rng rng(seed);
  auto normal = [&]() {
    double u1 = rng.Uniform(), u2 = rng.Uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  };
  const double base = 0.02, resid = 0.02 / std::sqrt(2.0 * cfg_.layers);
  for (const Tensor& t : layout_.tensors) {
    float* p = params_.data() + t.offset;
    if (!t.decay) {
      std::fill(p, p + t.size(), 1.f);
      continue;
    }
    const bool residual = t.name.find("o_proj") != std::string::npos || t.name.find("down_proj") != std::string::npos;
    const double sd = residual ? resid : base;
    for (size_t i = 0; i < t.size(); ++i) p[i] = static_cast<float>(sd * normal());
  }
  ParamsChanged();
}

const PackedB& Transformer::Fwd(Mat& m) {
  if (!m.fwdOk) {
    PackB(params_.data() + m.off, m.in, /*trans=*/true, m.in, m.out, m.fwd);
    m.fwdOk = true;
  }
  return m.fwd;
}
const PackedB& Transformer::Bwd(Mat& m) {
  if (!m.bwdOk) {
    PackB(params_.data() + m.off, m.in, false, m.out, m.in, m.bwd);
    m.bwdOk = true;
  }
  return m.bwd;
}
std::vector<AttentionScratch>& Transformer::Scratch() {
  if (scratch_.size() < static_cast<size_t>(ThreadCount())) scratch_.resize(ThreadCount());
  return scratch_;
}

void Transformer::BuildBatch(const int32_t* tokens, const int32_t* offsets, int B, const int32_t* outStart, Batch& b) {
  b.B = B;
  b.N = offsets[B] - offsets[0];
  b.tokens.assign(tokens + offsets[0], tokens + offsets[B]);
  b.positions.resize(b.N);
  b.seqStart.resize(B);
  b.seqLen.resize(B);
  b.pOff.resize(B);
  b.outRows.clear();
  b.pTotal = 0;
  for (int s = 0; s < B; ++s) {
    const int start = offsets[s] - offsets[0], len = offsets[s + 1] - offsets[s];
    b.seqStart[s] = start;
    b.seqLen[s] = len;
    for (int t = 0; t < len; ++t) b.positions[start + t] = t;
    for (int t = outStart[s]; t < len; ++t) b.outRows.push_back(start + t);
    b.pOff[s] = b.pTotal;
    b.pTotal += static_cast<size_t>(cfg_.heads) * len * len;
  }
}

// One block: x_mid = x + Attn(RMSNorm(x)) Woᵀ ; x_out = x_mid + MLP(RMSNorm(x_mid)).  xin, xout [N, d]
void Transformer::LayerForward(int l, const Batch& b, const float* xin, LayerActs& a, float* xout) {
  const int N = b.N, d = cfg_.dim, H = cfg_.heads, g = G(), h = cfg_.hidden;
  const LayerOffsets& o = layout_.layer[l];
  const float* P = params_.data();
  Grow(a.n1, size_t(N) * d);
  Grow(a.rstd1, N);
  Grow(a.qkv, size_t(N) * 3 * d);
  Grow(a.p, b.pTotal);
  Grow(a.att, size_t(N) * d);
  Grow(a.xmid, size_t(N) * d);
  Grow(a.n2, size_t(N) * d);
  Grow(a.rstd2, N);
  Grow(a.gu, size_t(N) * g);
  Grow(a.act, size_t(N) * h);

  RmsNormForward(xin, P + o.attnNorm, N, d, cfg_.normEps, a.n1.data(), a.rstd1.data());
  Gemm(N, a.n1.data(), d, false, Fwd(wqkv_[l]), a.qkv.data(), 3 * d, false);
  RopeForward(a.qkv.data(), N, d, H, b.positions.data(), rope_);
  auto& scratch = Scratch();
  ParallelFor(size_t(b.B) * H, [&](size_t begin, size_t end, int w) {
    for (size_t u = begin; u < end; ++u) {
      const int s = static_cast<int>(u / H), head = static_cast<int>(u % H), T = b.seqLen[s];
      if (T == 0) continue;
      const size_t r0 = b.seqStart[s];
      AttentionForward(a.qkv.data() + r0 * 3 * d, T, d, H, head, a.p.data() + b.pOff[s] + size_t(head) * T * T,
                       a.att.data() + r0 * d, d, scratch[w]);
    }
  });
  std::memcpy(a.xmid.data(), xin, sizeof(float) * N * d);
  Gemm(N, a.att.data(), d, false, Fwd(wo_[l]), a.xmid.data(), d, true);
  RmsNormForward(a.xmid.data(), P + o.mlpNorm, N, d, cfg_.normEps, a.n2.data(), a.rstd2.data());
  Gemm(N, a.n2.data(), d, false, Fwd(wgu_[l]), a.gu.data(), g, false);
  if (cfg_.swiglu) SwiGluForward(a.gu.data(), N, h, a.act.data());
  else GeluForward(a.gu.data(), N, h, a.act.data());
  if (xout != a.xmid.data()) std::memcpy(xout, a.xmid.data(), sizeof(float) * N * d);
  Gemm(N, a.act.data(), h, false, Fwd(wdown_[l]), xout, d, true);
}

void Transformer::RunForward(Acts& a, bool keepLayers, std::vector<float>& logits, const KvSink& sink) {
  const Batch& b = a.batch;
  const int N = b.N, d = cfg_.dim, V = cfg_.vocab, L = cfg_.layers;
  a.layers.resize(keepLayers ? L : 1);
  for (int l = 0; l < (keepLayers ? L : 1); ++l) Grow(a.layers[l].x, size_t(N) * d);
  Grow(a.xL, size_t(N) * d);
  float* x0 = a.layers[0].x.data();
  EmbeddingForward(b.tokens.data(), N, params_.data() + layout_.embed, d, x0);
  for (int l = 0; l < L; ++l) {
    LayerActs& la = a.layers[keepLayers ? l : 0];
    // Without kept layers the input is copied aside so the block may write its output over x.
    const float* xin = la.x.data();
    float* xout = keepLayers ? (l + 1 < L ? a.layers[l + 1].x.data() : a.xL.data()) : a.xL.data();
    LayerForward(l, b, xin, la, xout);
    if (sink) sink(l, la.qkv.data());
    if (!keepLayers && l + 1 < L) std::memcpy(la.x.data(), a.xL.data(), sizeof(float) * N * d);
  }
  Grow(a.nf, size_t(N) * d);
  Grow(a.rstdf, N);
  RmsNormForward(a.xL.data(), params_.data() + layout_.finalNorm, N, d, cfg_.normEps, a.nf.data(), a.rstdf.data());
  const int R = static_cast<int>(b.outRows.size());
  Grow(a.nfSel, size_t(R) * d);
  for (int r = 0; r < R; ++r)
    std::memcpy(a.nfSel.data() + size_t(r) * d, a.nf.data() + size_t(b.outRows[r]) * d, sizeof(float) * d);
  logits.resize(size_t(R) * V);
  Gemm(R, a.nfSel.data(), d, false, Fwd(embed_), logits.data(), V, false);
}

void Transformer::Forward(const int32_t* tokens, const int32_t* offsets, int B, const int32_t* outStart, bool train,
                          std::vector<float>& logits) {
  Acts& a = train ? train_ : infer_;
  a.ready = false;
  BuildBatch(tokens, offsets, B, outStart, a.batch);
  for (int32_t t : a.batch.tokens)
    XOPD_CHECK(t < cfg_.vocab && (t >= 0 || (!train && t == -1)), "E_TOKEN_ID", "token index outside the model's id list");
  for (int s = 0; s < B; ++s)
    XOPD_CHECK(a.batch.seqLen[s] <= cfg_.maxSeq, "E_TOO_LONG",
               "a sequence of " + std::to_string(a.batch.seqLen[s]) + " tokens exceeds the model's context of " +
                   std::to_string(cfg_.maxSeq));
  RunForward(a, train, logits, nullptr);
  a.ready = train;
}

void Transformer::ZeroGrads() { std::fill(grads_.begin(), grads_.end(), 0.f); }

void Transformer::Backward(const float* dlogits) {
  XOPD_CHECK(train_.ready, "E_MODEL_STATE", "backward needs a training forward first (one backward per forward)");
  Acts& a = train_;
  const Batch& b = a.batch;
  const int N = b.N, d = cfg_.dim, V = cfg_.vocab, H = cfg_.heads, g = G(), h = cfg_.hidden;
  const int R = static_cast<int>(b.outRows.size());
  float* P = params_.data();
  float* GR = grads_.data();
  Grow(dx_, size_t(N) * d);
  Grow(dnf_, size_t(N) * d);
  Grow(dnfSel_, size_t(R) * d);
  Grow(dact_, size_t(N) * h);
  Grow(dgu_, size_t(N) * g);
  Grow(dn_, size_t(N) * d);
  Grow(datt_, size_t(N) * d);
  Grow(dqkv_, size_t(N) * 3 * d);

  // logits [R,V] = nfSel [R,d] · Eᵀ
  Gemm(R, dlogits, V, false, Bwd(embed_), dnfSel_.data(), d, false);
  PackB(a.nfSel.data(), d, false, R, d, tmpPack_);
  Gemm(V, dlogits, V, true, tmpPack_, GR + layout_.embed, d, true);
  std::fill(dnf_.begin(), dnf_.begin() + size_t(N) * d, 0.f);
  for (int r = 0; r < R; ++r)
    std::memcpy(dnf_.data() + size_t(b.outRows[r]) * d, dnfSel_.data() + size_t(r) * d, sizeof(float) * d);
  RmsNormBackward(dnf_.data(), a.xL.data(), P + layout_.finalNorm, a.rstdf.data(), N, d, dx_.data(), false,
                  GR + layout_.finalNorm);

  auto& scratch = Scratch();
  for (int l = cfg_.layers - 1; l >= 0; --l) {
    LayerActs& la = a.layers[l];
    const LayerOffsets& o = layout_.layer[l];
    // x_out = x_mid + act · Wdownᵀ
    Gemm(N, dx_.data(), d, false, Bwd(wdown_[l]), dact_.data(), h, false);
    PackB(la.act.data(), h, false, N, h, tmpPack_);
    Gemm(d, dx_.data(), d, true, tmpPack_, GR + o.wdown, h, true);
    if (cfg_.swiglu) SwiGluBackward(dact_.data(), la.gu.data(), N, h, dgu_.data());
    else GeluBackward(dact_.data(), la.gu.data(), N, h, dgu_.data());
    // gu = n2 · Wguᵀ
    Gemm(N, dgu_.data(), g, false, Bwd(wgu_[l]), dn_.data(), d, false);
    PackB(la.n2.data(), d, false, N, d, tmpPack_);
    Gemm(g, dgu_.data(), g, true, tmpPack_, GR + o.wgu, d, true);
    // dx becomes d x_mid
    RmsNormBackward(dn_.data(), la.xmid.data(), P + o.mlpNorm, la.rstd2.data(), N, d, dx_.data(), true, GR + o.mlpNorm);
    // x_mid = x + att · Woᵀ
    Gemm(N, dx_.data(), d, false, Bwd(wo_[l]), datt_.data(), d, false);
    PackB(la.att.data(), d, false, N, d, tmpPack_);
    Gemm(d, dx_.data(), d, true, tmpPack_, GR + o.wo, d, true);
    ParallelFor(size_t(b.B) * H, [&](size_t begin, size_t end, int w) {
      for (size_t u = begin; u < end; ++u) {
        const int s = static_cast<int>(u / H), head = static_cast<int>(u % H), T = b.seqLen[s];
        if (T == 0) continue;
        const size_t r0 = b.seqStart[s];
        AttentionBackward(datt_.data() + r0 * d, d, la.qkv.data() + r0 * 3 * d,
                          la.p.data() + b.pOff[s] + size_t(head) * T * T, T, d, H, head, dqkv_.data() + r0 * 3 * d,
                          scratch[w]);
      }
    });
    RopeBackward(dqkv_.data(), N, d, H, b.positions.data(), rope_);
    // qkv = n1 · Wqkvᵀ
    Gemm(N, dqkv_.data(), 3 * d, false, Bwd(wqkv_[l]), dn_.data(), d, false);
    PackB(la.n1.data(), d, false, N, d, tmpPack_);
    Gemm(3 * d, dqkv_.data(), 3 * d, true, tmpPack_, GR + o.wqkv, d, true);
    // dx becomes d x (this block's input)
    RmsNormBackward(dn_.data(), la.x.data(), P + o.attnNorm, la.rstd1.data(), N, d, dx_.data(), true, GR + o.attnNorm);
  }
  EmbeddingBackward(dx_.data(), b.tokens.data(), N, d, GR + layout_.embed);
  a.ready = false;
}

StepInfo Transformer::Step() {
  StepInfo info;
  info.gradNorm = GradNorm(grads_.data(), grads_.size());
  if (!std::isfinite(info.gradNorm)) {
    ZeroGrads();
    throw Error("E_NONFINITE", "the gradient norm is not finite: the step was skipped and the gradients cleared "
                               "(lower the learning rate or check the loss)");
  }
  const float scale = optim.clip > 0 && info.gradNorm > optim.clip ? static_cast<float>(optim.clip / info.gradNorm) : 1.f;
  info.lr = LearningRate(optim, stepCount);
  AdamWUpdate(params_.data(), grads_.data(), m_.data(), v_.data(), params_.size(), decayMask_.data(), optim, info.lr,
              stepCount + 1, scale);
  info.step = ++stepCount;
  ZeroGrads();
  ParamsChanged();
  return info;
}

void Transformer::Generate(const int32_t* tokens, const int32_t* offsets, int B, int maxNew, float temperature,
                           float topP, uint64_t seed, uint64_t firstIndex, const std::vector<uint8_t>& stop,
                           GenerateResult& out) {
  const int d = cfg_.dim, V = cfg_.vocab, H = cfg_.heads, L = cfg_.layers, g = G(), h = cfg_.hidden;
  out.tokens.clear();
  out.logprobs.clear();
  out.offsets.assign(B + 1, 0);
  if (B == 0) return;
  std::vector<int32_t> outStart(B);
  for (int s = 0; s < B; ++s) {
    const int len = offsets[s + 1] - offsets[s];
    XOPD_CHECK(len >= 1, "E_ARG_SHAPE", "every prompt needs at least one token");
    XOPD_CHECK(len + maxNew <= cfg_.maxSeq, "E_TOO_LONG",
               "prompt " + std::to_string(s) + " has " + std::to_string(len) + " tokens; with maxTokens " +
                   std::to_string(maxNew) + " it exceeds the model's context of " + std::to_string(cfg_.maxSeq));
    outStart[s] = len - 1;
  }
  for (int i = offsets[0]; i < offsets[B]; ++i)
    XOPD_CHECK(tokens[i] >= 0 && tokens[i] < V, "E_TOKEN_ID", "prompt token index outside the model's id list");

  // KV cache per (sequence, layer), room for the prompt and maxNew tokens.
  std::vector<KvCache> cache(size_t(B) * L);
  for (int s = 0; s < B; ++s)
    for (int l = 0; l < L; ++l) cache[size_t(s) * L + l].Init(offsets[s + 1] - offsets[s] + maxNew, H, cfg_.headDim());
  Acts& a = infer_;
  a.ready = false;
  BuildBatch(tokens, offsets, B, outStart.data(), a.batch);
  const Batch& pb = a.batch;
  std::vector<float> logits;
  RunForward(a, false, logits, [&](int l, const float* qkv) {
    ParallelFor(B, [&](size_t b, size_t e, int) {
      for (size_t s = b; s < e; ++s)
        for (int t = 0; t < pb.seqLen[s]; ++t) {
          const float* row = qkv + size_t(pb.seqStart[s] + t) * 3 * d;
          cache[s * L + l].Put(t, row + d, row + 2 * d);
        }
    }, 8);
  });

  std::vector<std::vector<int32_t>> gen(B);
  std::vector<std::vector<float>> genLp(B);
  std::vector<Rng> rngs;
  for (int s = 0; s < B; ++s) rngs.emplace_back(seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL * (firstIndex + s + 1));
  std::vector<std::vector<std::pair<float, int>>> sortScratch(ThreadCount());
  std::vector<int> active, len(B);
  auto sample = [&](int s, const float* row, std::vector<std::pair<float, int>>& scratch) {
    double lp = 0;
    const int tok = SampleRow(row, V, temperature, topP, rngs[s], scratch, &lp);
    gen[s].push_back(tok);
    genLp[s].push_back(static_cast<float>(lp));
    return !stop[tok] && static_cast<int>(gen[s].size()) < maxNew;
  };
  for (int s = 0; s < B; ++s) {
    len[s] = pb.seqLen[s];
    if (maxNew > 0 && sample(s, logits.data() + size_t(s) * V, sortScratch[0])) active.push_back(s);
  }

  // Decoding: the live sequences' newest tokens go through the same kernels as one batch of rows.
  std::vector<float> x, n1, rstd, qkv, att, xmid, n2, gu, act, nf;
  std::vector<int32_t> tok;
  std::vector<int> pos;
  auto& scratch = Scratch();
  while (!active.empty()) {
    const int A = static_cast<int>(active.size());
    tok.resize(A);
    pos.resize(A);
    for (int i = 0; i < A; ++i) {
      tok[i] = gen[active[i]].back();
      pos[i] = len[active[i]];  // the new token's position
    }
    x.resize(size_t(A) * d);
    n1.resize(size_t(A) * d);
    rstd.resize(A);
    qkv.resize(size_t(A) * 3 * d);
    att.resize(size_t(A) * d);
    xmid.resize(size_t(A) * d);
    n2.resize(size_t(A) * d);
    gu.resize(size_t(A) * g);
    act.resize(size_t(A) * h);
    nf.resize(size_t(A) * d);
    EmbeddingForward(tok.data(), A, params_.data() + layout_.embed, d, x.data());
    for (int l = 0; l < L; ++l) {
      const LayerOffsets& o = layout_.layer[l];
      RmsNormForward(x.data(), params_.data() + o.attnNorm, A, d, cfg_.normEps, n1.data(), rstd.data());
      Gemm(A, n1.data(), d, false, Fwd(wqkv_[l]), qkv.data(), 3 * d, false);
      RopeForward(qkv.data(), A, d, H, pos.data(), rope_);
      for (int i = 0; i < A; ++i)
        cache[size_t(active[i]) * L + l].Put(pos[i], qkv.data() + size_t(i) * 3 * d + d, qkv.data() + size_t(i) * 3 * d + 2 * d);
      ParallelFor(size_t(A) * H, [&](size_t begin, size_t end, int w) {
        for (size_t u = begin; u < end; ++u) {
          const int i = static_cast<int>(u / H), head = static_cast<int>(u % H);
          AttentionDecode(qkv.data() + size_t(i) * 3 * d, cache[size_t(active[i]) * L + l], pos[i] + 1, d, H, head,
                          att.data() + size_t(i) * d, scratch[w]);
        }
      }, 4);
      std::memcpy(xmid.data(), x.data(), sizeof(float) * A * d);
      Gemm(A, att.data(), d, false, Fwd(wo_[l]), xmid.data(), d, true);
      RmsNormForward(xmid.data(), params_.data() + o.mlpNorm, A, d, cfg_.normEps, n2.data(), rstd.data());
      Gemm(A, n2.data(), d, false, Fwd(wgu_[l]), gu.data(), g, false);
      if (cfg_.swiglu) SwiGluForward(gu.data(), A, h, act.data());
      else GeluForward(gu.data(), A, h, act.data());
      std::memcpy(x.data(), xmid.data(), sizeof(float) * A * d);
      Gemm(A, act.data(), h, false, Fwd(wdown_[l]), x.data(), d, true);
    }
    RmsNormForward(x.data(), params_.data() + layout_.finalNorm, A, d, cfg_.normEps, nf.data(), rstd.data());
    logits.resize(size_t(A) * V);
    Gemm(A, nf.data(), d, false, Fwd(embed_), logits.data(), V, false);
    // Rows sample in parallel: each sequence owns its generator, so the result is thread-independent.
    std::vector<uint8_t> more(A);
    ParallelFor(A, [&](size_t b, size_t e, int w) {
      for (size_t i = b; i < e; ++i) more[i] = sample(active[i], logits.data() + i * V, sortScratch[w]);
    }, 4);
    std::vector<int> next;
    for (int i = 0; i < A; ++i) {
      ++len[active[i]];
      if (more[i]) next.push_back(active[i]);
    }
    active.swap(next);
  }
  for (int s = 0; s < B; ++s) {
    out.offsets[s + 1] = out.offsets[s] + static_cast<int32_t>(gen[s].size());
    out.tokens.insert(out.tokens.end(), gen[s].begin(), gen[s].end());
    out.logprobs.insert(out.logprobs.end(), genLp[s].begin(), genLp[s].end());
  }
}

}  // namespace model
}  // namespace xopd
