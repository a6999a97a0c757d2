// The addon's entry point: version/threads/CUDA info, then every module's registration. The same
// file starts both builds: xopd.node (the stages' binding.cc files) and xopd_dev.node (those plus
// native/dev/: references, bench kernels and test hooks; never shipped).
#include "common/binding.h"
#include "common/cuda_info.h"
#include "common/threads.h"

namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("napi", Napi::Number::New(env, NAPI_VERSION));
  out.Set("threads", Napi::Number::New(env, xopd::ThreadCount()));
  xopd::CudaInfo ci = xopd::QueryCuda();
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", Napi::Boolean::New(env, ci.compiled));
  cuda.Set("devices", Napi::Number::New(env, ci.devices));
  if (!ci.error.empty()) cuda.Set("error", Napi::String::New(env, ci.error));
  cuda.Set("workspaceLimit", Napi::Number::New(env, static_cast<double>(xopd::CudaWorkspaceLimit())));
  out.Set("cuda", cuda);
  Napi::Array mods = Napi::Array::New(env);
  uint32_t i = 0;
  for (auto& r : xopd::registry()) mods.Set(i++, Napi::String::New(env, r.first));
  out.Set("modules", mods);
  return out;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  return xopd::Guard(info, [&]() -> Napi::Value {
    int64_t n = xopd::IntArg(info[0], "threads");
    XOPD_CHECK(n >= 1 && n <= 256, "E_ARG_RANGE", "threads must be in 1..256");
    xopd::SetThreadCount(static_cast<int>(n));
    return info.Env().Undefined();
  });
}

// Frees the device and pinned memory the CUDA paths keep between calls; returns the bytes freed.
Napi::Value ReleaseCudaMemory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(xopd::ReleaseCudaWorkspaces()));
}

// The cap on that memory per op, in bytes (0: XOPD_CUDA_WORKSPACE_MB or the default of 1024 MiB).
Napi::Value SetCudaWorkspaceLimit(const Napi::CallbackInfo& info) {
  return xopd::Guard(info, [&]() -> Napi::Value {
    const double bytes = xopd::NumArg(info[0], "bytes");
    XOPD_CHECK(bytes == 0 || (bytes >= (1 << 20) && bytes <= 1e15), "E_ARG_RANGE", "the CUDA workspace limit must be 0 (the default) or at least 1 MiB");
    xopd::SetCudaWorkspaceLimit(static_cast<size_t>(bytes));
    return info.Env().Undefined();
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("releaseCudaMemory", Napi::Function::New(env, ReleaseCudaMemory, "releaseCudaMemory"));
  exports.Set("setCudaWorkspaceLimit", Napi::Function::New(env, SetCudaWorkspaceLimit, "setCudaWorkspaceLimit"));
  for (auto& r : xopd::registry()) r.second(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(xopd, Init)
