// Typed-array access for bindings: checks the element type and returns a (pointer, length) view.
#pragma once
#include <napi.h>
#include <cstdint>
#include <string>
#include "common/errors.h"

namespace xopd {

template <typename T>
struct View {
  T* data = nullptr;
  size_t size = 0;
  T& operator[](size_t i) const { return data[i]; }
};

template <typename T> constexpr napi_typedarray_type TypedKind();
template <> constexpr napi_typedarray_type TypedKind<float>() { return napi_float32_array; }
template <> constexpr napi_typedarray_type TypedKind<double>() { return napi_float64_array; }
template <> constexpr napi_typedarray_type TypedKind<int32_t>() { return napi_int32_array; }
template <> constexpr napi_typedarray_type TypedKind<uint32_t>() { return napi_uint32_array; }
template <> constexpr napi_typedarray_type TypedKind<uint8_t>() { return napi_uint8_array; }
template <> constexpr napi_typedarray_type TypedKind<uint16_t>() { return napi_uint16_array; }

template <typename T>
View<T> TypedArg(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray()) throw Error("E_ARG_TYPE", std::string(name) + " must be a typed array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != TypedKind<T>())
    throw Error("E_ARG_TYPE", std::string(name) + " has the wrong element type");
  Napi::ArrayBuffer buf = ta.ArrayBuffer();
  View<T> out;
  out.data = reinterpret_cast<T*>(static_cast<uint8_t*>(buf.Data()) + ta.ByteOffset());
  out.size = ta.ElementLength();
  return out;
}

template <typename TA>
TA NewTyped(Napi::Env env, size_t n) { return TA::New(env, n); }

inline int64_t IntArg(const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) throw Error("E_ARG_TYPE", std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == static_cast<double>(static_cast<int64_t>(d))))
    throw Error("E_ARG_TYPE", std::string(name) + " must be an integer");
  return static_cast<int64_t>(d);
}

inline double NumArg(const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) throw Error("E_ARG_TYPE", std::string(name) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

}  // namespace xopd
