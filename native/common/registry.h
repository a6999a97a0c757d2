// Each native module registers its exports from its own file, so adding a kernel never edits addon.cc.
//   static xopd::Registration reg("align", [](Napi::Env env, Napi::Object exports) { ... });
#pragma once
#include <napi.h>
#include <functional>
#include <map>
#include <string>
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

}  // namespace xopd
