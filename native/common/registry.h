// Each native module registers its exports from its own file, so adding a kernel never edits addon.cc.
//   static xopd::Registration reg("align", [](Napi::Env env, Napi::Object exports) { ... });
#pragma once
#include <napi.h>
#include <functional>
#include <vector>

namespace xopd {

using InitFn = std::function<void(Napi::Env, Napi::Object)>;

inline std::vector<std::pair<const char*, InitFn>>& registry() {
  static std::vector<std::pair<const char*, InitFn>> fns;  // function-local: safe static-init order
  return fns;
}

struct Registration {
  Registration(const char* name, InitFn fn) { registry().emplace_back(name, std::move(fn)); }
};

}  // namespace xopd
