// Argument parsing shared by the loss bindings: logits (fp32 or bf16) with their shape, the
// optional row mask and the gradient buffer (fresh, or the caller's `out` to reuse).
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "common/errors.h"
#include "common/typed.h"

namespace xopd {
namespace loss {

struct LogitsArg {
  const void* data = nullptr;
  bool bf16 = false;  // bf16 logits arrive as Uint16Array
  size_t rows = 0;
  size_t vocab = 0;
};

inline LogitsArg ParseLogits(const Napi::Object& o) {
  LogitsArg a;
  Napi::Value v = o.Get("logits");
  int64_t rows = IntArg(o.Get("rows"), "rows"), vocab = IntArg(o.Get("vocab"), "vocab");
  XOPD_CHECK(rows >= 1, "E_ARG_SHAPE", "rows must be at least 1 (empty batch)");
  XOPD_CHECK(vocab >= 1, "E_ARG_SHAPE", "vocab must be at least 1");
  a.rows = static_cast<size_t>(rows);
  a.vocab = static_cast<size_t>(vocab);
  size_t len;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
    auto t = TypedArg<uint16_t>(v, "logits");
    a.data = t.data;
    a.bf16 = true;
    len = t.size;
  } else {
    auto t = TypedArg<float>(v, "logits");
    a.data = t.data;
    len = t.size;
  }
  XOPD_CHECK(len / a.vocab == a.rows && len % a.vocab == 0, "E_ARG_SHAPE",
             "logits has " + std::to_string(len) + " values, expected rows * vocab = " + std::to_string(a.rows) + " * " +
                 std::to_string(a.vocab));
  return a;
}

// Optional Uint8Array mask [rows]; nullptr when absent. Returns the number of rows it keeps.
inline const uint8_t* ParseMask(const Napi::Object& o, size_t rows, size_t* kept) {
  Napi::Value v = o.Get("mask");
  if (v.IsUndefined() || v.IsNull()) {
    *kept = rows;
    return nullptr;
  }
  auto m = TypedArg<uint8_t>(v, "mask");
  XOPD_CHECK(m.size == rows, "E_ARG_SHAPE", "mask must have one entry per row (" + std::to_string(rows) + "), got " + std::to_string(m.size));
  size_t n = 0;
  for (size_t i = 0; i < rows; ++i) n += m[i] != 0;
  *kept = n;
  return m.data;
}

// The gradient buffer: o.out when given (same element type and length as logits), else a new one.
inline Napi::TypedArray MakeGrad(Napi::Env env, const Napi::Object& o, const LogitsArg& a, void** data) {
  const size_t n = a.rows * a.vocab;
  Napi::Value out = o.Get("out");
  if (!out.IsUndefined() && !out.IsNull()) {
    if (a.bf16) {
      auto t = TypedArg<uint16_t>(out, "out");
      XOPD_CHECK(t.size == n, "E_ARG_SHAPE", "out must have rows * vocab elements");
      *data = t.data;
    } else {
      auto t = TypedArg<float>(out, "out");
      XOPD_CHECK(t.size == n, "E_ARG_SHAPE", "out must have rows * vocab elements");
      *data = t.data;
    }
    return out.As<Napi::TypedArray>();
  }
  if (a.bf16) {
    Napi::Uint16Array g = Napi::Uint16Array::New(env, n);
    *data = g.Data();
    return g;
  }
  Napi::Float32Array g = Napi::Float32Array::New(env, n);
  *data = g.Data();
  return g;
}

inline std::string StrField(const Napi::Object& o, const char* name, const char* dflt) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return dflt;
  if (!v.IsString()) throw Error("E_ARG_TYPE", std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline double NumField(const Napi::Object& o, const char* name, double dflt) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return dflt;
  return NumArg(v, name);
}

// Large outputs bypass the caches (streaming stores); small ones stay cached for the caller.
inline bool StreamOutput(size_t bytes) { return bytes >= (size_t{32} << 20); }

}  // namespace loss
}  // namespace xopd
