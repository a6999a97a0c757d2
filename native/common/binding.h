// What every binding.cc shares (the only Node-API header outside the bindings): the registry each
// stage adds its exports to, the Guard that turns xopd::Error into a JS error with a code, and
// typed-array / number arguments checked on the way in.
//   static xopd::Registration reg("align", [](Napi::Env env, Napi::Object exports) { ... });
#pragma once
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/errors.h"

namespace xopd {

// ---- registry: each stage registers its exports from its own binding.cc ----
using InitFn = std::function<void(Napi::Env, Napi::Object)>;

inline std::vector<std::pair<const char*, InitFn>>& registry() {
  static std::vector<std::pair<const char*, InitFn>> fns;  // function-local: safe static-init order
  return fns;
}

struct Registration {
  Registration(const char* name, InitFn fn) { registry().emplace_back(name, std::move(fn)); }
};

// ---- wrapped classes ----
// The constructor of a wrapped class, kept per Node environment: the main thread and every worker
// thread load the addon into an environment of their own, and a reference made in one must never
// be used in another (a process-wide static would hold whichever environment loaded last).
struct Constructors {
  std::map<std::string, Napi::FunctionReference> byName;
};

inline Napi::FunctionReference& ConstructorOf(Napi::Env env, const char* name) {
  Constructors* c = env.GetInstanceData<Constructors>();
  if (c == nullptr) {
    c = new Constructors();
    env.SetInstanceData<Constructors>(c);  // deleted with the environment
  }
  return c->byName[name];
}

// True when v was made by the constructor registered as `name` in v's own environment.
inline bool IsInstanceOf(const Napi::Value& v, const char* name) {
  if (!v.IsObject()) return false;
  Napi::FunctionReference& ctor = ConstructorOf(v.Env(), name);
  return !ctor.IsEmpty() && v.As<Napi::Object>().InstanceOf(ctor.Value());
}

// ---- errors at the boundary ----
inline Napi::Error ToJsError(Napi::Env env, const std::string& code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("xopdNative", Napi::Boolean::New(env, true));
  return e;
}

// Wraps a binding body: xopd::Error and std::exception become JS errors with a code.
template <typename F>
Napi::Value Guard(const Napi::CallbackInfo& info, F&& body) {
  Napi::Env env = info.Env();
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const Error& e) {
    throw ToJsError(env, e.code, e.what());
  } catch (const std::bad_alloc&) {
    throw ToJsError(env, "E_OUT_OF_MEMORY", "native allocation failed: reduce the batch or sequence size");
  } catch (const std::exception& e) {
    throw ToJsError(env, "E_NATIVE", std::string("native error: ") + e.what());
  }
}

// ---- arguments ----
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

// A typed array of element type T (E_ARG_TYPE otherwise), as a (pointer, length) view.
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

// An optional typed array: an empty view when undefined or null.
template <typename T>
View<T> OptionalTypedArg(const Napi::Value& v, const char* name) {
  if (v.IsUndefined() || v.IsNull()) return View<T>{};
  return TypedArg<T>(v, name);
}

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

// Copies n values into a new typed array of the matching kind.
template <typename TA, typename T>
TA CopyOutAs(Napi::Env env, const T* p, size_t n) {
  TA a = TA::New(env, n);
  if (n) std::memcpy(a.Data(), p, n * sizeof(T));
  return a;
}
inline Napi::Float32Array CopyOut(Napi::Env env, const float* p, size_t n) { return CopyOutAs<Napi::Float32Array>(env, p, n); }
inline Napi::Float64Array CopyOut(Napi::Env env, const double* p, size_t n) { return CopyOutAs<Napi::Float64Array>(env, p, n); }
inline Napi::Int32Array CopyOut(Napi::Env env, const int32_t* p, size_t n) { return CopyOutAs<Napi::Int32Array>(env, p, n); }
inline Napi::Uint8Array CopyOut(Napi::Env env, const uint8_t* p, size_t n) { return CopyOutAs<Napi::Uint8Array>(env, p, n); }

}  // namespace xopd
