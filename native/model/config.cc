#include "model/config.h"

#include "common/errors.h"

namespace xopd {
namespace model {

void ValidateConfig(const Config& c) {
  auto need = [](bool ok, const std::string& msg) { XOPD_CHECK(ok, "E_MODEL_CONFIG", msg); };
  need(c.vocab >= 2 && c.vocab <= (1 << 20), "vocab (the id list length) must be in [2, 1048576]");
  need(c.dim >= 2 && c.dim <= 8192, "hidden_size must be in [2, 8192]");
  need(c.layers >= 1 && c.layers <= 256, "num_hidden_layers must be in [1, 256]");
  need(c.heads >= 1 && c.dim % c.heads == 0, "num_attention_heads must divide hidden_size");
  need(c.headDim() % 2 == 0, "hidden_size / num_attention_heads must be even (rotary pairs)");
  need(c.hidden >= 1 && c.hidden <= 65536, "intermediate_size must be in [1, 65536]");
  need(c.maxSeq >= 2 && c.maxSeq <= 65536, "max_position_embeddings must be in [2, 65536]");
  need(c.ropeTheta > 1.f, "rope_theta must be > 1");
  need(c.normEps > 0.f && c.normEps < 1.f, "rms_norm_eps must be in (0, 1)");
}

Layout MakeLayout(const Config& c) {
  ValidateConfig(c);
  Layout out;
  const int d = c.dim, h = c.hidden;
  auto add = [&](const std::string& name, std::vector<int> shape, bool decay) {
    Tensor t{name, out.total, std::move(shape), decay};
    out.total += t.size();
    out.tensors.push_back(t);
    return t.offset;
  };
  out.embed = add("model.embed_tokens.weight", {c.vocab, d}, true);
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerOffsets o{};
    o.attnNorm = add(p + "input_layernorm.weight", {d}, false);
    o.wqkv = add(p + "self_attn.q_proj.weight", {d, d}, true);
    add(p + "self_attn.k_proj.weight", {d, d}, true);
    add(p + "self_attn.v_proj.weight", {d, d}, true);
    o.wo = add(p + "self_attn.o_proj.weight", {d, d}, true);
    o.mlpNorm = add(p + "post_attention_layernorm.weight", {d}, false);
    if (c.swiglu) {
      o.wgu = add(p + "mlp.gate_proj.weight", {h, d}, true);
      add(p + "mlp.up_proj.weight", {h, d}, true);
    } else {
      o.wgu = add(p + "mlp.up_proj.weight", {h, d}, true);
    }
    o.wdown = add(p + "mlp.down_proj.weight", {d, h}, true);
    out.layer.push_back(o);
  }
  out.finalNorm = add("model.norm.weight", {d}, false);
  return out;
}

}  // namespace model
}  // namespace xopd
