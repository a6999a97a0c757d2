// Native errors carry a stable code; the TypeScript facade turns them into XopdError.
// Native code throws xopd::Error (never aborts); the binding layer converts it at the boundary.
#pragma once
#include <napi.h>
#include <stdexcept>
#include <string>

namespace xopd {

struct Error : std::runtime_error {
  std::string code;
  Error(std::string c, const std::string& msg) : std::runtime_error(msg), code(std::move(c)) {}
};

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

#define XOPD_CHECK(cond, code, msg) \
  do {                              \
    if (!(cond)) throw ::xopd::Error((code), (msg)); \
  } while (0)

}  // namespace xopd
