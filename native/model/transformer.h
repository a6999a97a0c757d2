// The embedded decoder: a pre-norm Llama-style transformer (RMSNorm, rotary positions, SwiGLU or
// GELU MLP, causal attention, tied embeddings) with its own backward, AdamW, and KV-cache sampling.
// Token ids here are INDICES into the model's id list (0..V-1); the TypeScript facade maps
// tokenizer ids to indices and back.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model/config.h"
#include "model/gemm.h"
#include "model/ops.h"

namespace xopd {
namespace model {

struct StepInfo {
  double lr = 0, gradNorm = 0;
  int step = 0;
};

struct GenerateResult {
  std::vector<int32_t> tokens;    // all sequences' sampled indices, concatenated
  std::vector<float> logprobs;    // the model's logprob of each
  std::vector<int32_t> offsets;   // [B+1]
};

class Transformer {
 public:
  explicit Transformer(const Config& c);

  const Config& config() const { return cfg_; }
  const Layout& layout() const { return layout_; }
  std::vector<float>& params() { return params_; }
  const std::vector<float>& grads() const { return grads_; }
  // Call after writing params() directly: drops the packed copies of the weights.
  void ParamsChanged();
  // Normal(0, 0.02) matrices (residual outputs scaled by 1/sqrt(2L)), unit norm gains.
  void InitParams(uint64_t seed);

  // Sequences b = 0..B-1 are tokens[offsets[b] .. offsets[b+1]); logits are returned for positions
  // outStart[b] .. len_b - 1 of each, rows concatenated in order -> logits [R, V].
  // train: keep the activations for one Backward. Index -1 is allowed only when !train.
  void Forward(const int32_t* tokens, const int32_t* offsets, int B, const int32_t* outStart, bool train,
               std::vector<float>& logits);
  // d loss / d logits of the last train Forward ([R, V]) -> parameter gradients (+=).
  void Backward(const float* dlogits);
  bool backwardReady() const { return train_.ready; }
  int trainRows() const { return static_cast<int>(train_.batch.outRows.size()); }
  void ZeroGrads();

  OptimConfig optim;
  int stepCount = 0;
  StepInfo Step();
  // Adam moments (with stepCount, the optimizer state a resumed run needs).
  const std::vector<float>& adamM() const { return m_; }
  const std::vector<float>& adamV() const { return v_; }
  std::vector<float>& adamM() { return m_; }
  std::vector<float>& adamV() { return v_; }

  // Prompts as in Forward (offsets [B+1]); samples up to maxNew tokens each, stopping after a
  // token with stop[index] != 0. Sequence b draws from its own generator seeded by
  // (seed, firstIndex + b), so splitting a batch into calls does not change the samples.
  void Generate(const int32_t* tokens, const int32_t* offsets, int B, int maxNew, float temperature, float topP,
                uint64_t seed, uint64_t firstIndex, const std::vector<uint8_t>& stop, GenerateResult& out);

 private:
  struct Batch {
    int N = 0, B = 0;
    std::vector<int32_t> tokens, positions;
    std::vector<int> seqStart, seqLen;
    std::vector<int> outRows;  // batch row of each returned logits row
    std::vector<size_t> pOff;  // per sequence: offset of its [H, T, T] probabilities
    size_t pTotal = 0;
  };
  struct LayerActs {
    std::vector<float> x, n1, rstd1, qkv, p, att, xmid, n2, rstd2, gu, act;
  };
  struct Acts {
    Batch batch;
    std::vector<LayerActs> layers;
    std::vector<float> xL, nf, rstdf, nfSel;
    bool ready = false;
  };
  struct Mat {
    size_t off;
    int out, in;
    PackedB fwd, bwd;  // fwd: B = Wᵀ [in, out] (y = x Wᵀ); bwd: B = W [out, in] (dx = dy W)
    bool fwdOk = false, bwdOk = false;
  };
  // Called after each layer's qkv is final (rotary applied), for the KV cache.
  using KvSink = std::function<void(int layer, const float* qkv)>;

  void BuildBatch(const int32_t* tokens, const int32_t* offsets, int B, const int32_t* outStart, Batch& b);
  void RunForward(Acts& a, bool keepLayers, std::vector<float>& logits, const KvSink& sink);
  void LayerForward(int l, const Batch& b, const float* xin, LayerActs& a, float* xout);
  const PackedB& Fwd(Mat& m);
  const PackedB& Bwd(Mat& m);
  std::vector<AttentionScratch>& Scratch();
  int G() const { return cfg_.swiglu ? 2 * cfg_.hidden : cfg_.hidden; }

  Config cfg_;
  Layout layout_;
  RopeTable rope_;
  std::vector<float> params_, grads_, m_, v_;
  Mat embed_;
  std::vector<Mat> wqkv_, wo_, wgu_, wdown_;
  std::vector<uint8_t> decayMask_;  // 1 where weight decay applies
  Acts train_, infer_;
  std::vector<AttentionScratch> scratch_;
  // backward buffers
  std::vector<float> dx_, dnf_, dnfSel_, dact_, dgu_, dn_, datt_, dqkv_;
  PackedB tmpPack_;
};

}  // namespace model
}  // namespace xopd
