// The embedded decoder's shape and the layout of its parameters in one flat float buffer.
// The layout is the single source of truth: the binding reports it (name, offset, shape) and the
// TypeScript side writes/validates model.safetensors from it, so the two can never drift.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace xopd {
namespace model {

struct Config {
  int vocab = 0;       // V: size of the model's id list (logit columns)
  int dim = 0;         // d: residual width
  int layers = 0;      // L
  int heads = 0;       // H (head_dim = d / H, even, for rotary pairs)
  int hidden = 0;      // h: MLP inner width
  int maxSeq = 0;      // longest sequence (prompt + response) the model accepts
  bool swiglu = true;  // gated SiLU MLP (gate, up, down); false: GELU (tanh) MLP (up, down)
  float ropeTheta = 10000.f;
  float normEps = 1e-5f;

  int headDim() const { return dim / heads; }
};

// Validates the numbers (throws xopd::Error E_MODEL_CONFIG naming the field to fix).
void ValidateConfig(const Config& c);

struct Tensor {
  std::string name;  // Hugging Face Llama-style name
  size_t offset = 0;  // in floats, into the flat parameter buffer
  std::vector<int> shape;
  bool decay = false;  // AdamW weight decay applies (matrices, not norm gains)
  size_t size() const {
    size_t n = 1;
    for (int s : shape) n *= static_cast<size_t>(s);
    return n;
  }
};

// Offsets of one layer's tensors. Fused pairs are adjacent on purpose: wq|wk|wv is one [3d, d]
// matrix and (SwiGLU) gate|up one [2h, d] matrix, so each is a single GEMM.
struct LayerOffsets {
  size_t attnNorm, wqkv, wo, mlpNorm, wgu, wdown;
};

struct Layout {
  std::vector<Tensor> tensors;
  std::vector<LayerOffsets> layer;
  size_t embed = 0, finalNorm = 0, total = 0;
};

Layout MakeLayout(const Config& c);

}  // namespace model
}  // namespace xopd
