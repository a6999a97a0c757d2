// Native errors carry a stable code (src/core/errors.ts ErrorCode); the TypeScript facade turns
// them into XopdError. Kernels throw xopd::Error and never abort; each stage's binding.cc converts
// it at the JS boundary (common/binding.h Guard). Plain C++: no Node-API here.
#pragma once
#include <stdexcept>
#include <string>

namespace xopd {

struct Error : std::runtime_error {
  std::string code;
  Error(std::string c, const std::string& msg) : std::runtime_error(msg), code(std::move(c)) {}
};

#define XOPD_CHECK(cond, code, msg) \
  do {                              \
    if (!(cond)) throw ::xopd::Error((code), (msg)); \
  } while (0)

}  // namespace xopd
