#include "tokenizer/token_table.h"

#include <string>

#include "common/errors.h"
#include "common/registry.h"
#include "common/typed.h"

namespace xopd {
namespace {

class TokenTableWrap : public Napi::ObjectWrap<TokenTableWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "TokenTable",
                                    {InstanceMethod("byteOffsets", &TokenTableWrap::JsByteOffsets),
                                     InstanceAccessor("vocab", &TokenTableWrap::JsVocab, nullptr)});
    ConstructorOf(env, "TokenTable") = Napi::Persistent(fn);
    exports.Set("TokenTable", fn);
  }

  // new TokenTable(bytes: Uint8Array, offsets: Uint32Array [vocab+1], special: Uint8Array [vocab])
  explicit TokenTableWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TokenTableWrap>(info) {
    Guard(info, [&]() -> Napi::Value {
      auto bytes = TypedArg<uint8_t>(info[0], "bytes");
      auto offsets = TypedArg<uint32_t>(info[1], "offsets");
      auto special = TypedArg<uint8_t>(info[2], "special");
      XOPD_CHECK(offsets.size >= 2, "E_TOKEN_TABLE", "token table needs at least one token");
      XOPD_CHECK(special.size == offsets.size - 1, "E_TOKEN_TABLE", "special must have one entry per token");
      XOPD_CHECK(offsets[0] == 0 && offsets[offsets.size - 1] == bytes.size, "E_TOKEN_TABLE",
                 "offsets must start at 0 and end at the byte count");
      for (size_t i = 1; i < offsets.size; ++i)
        XOPD_CHECK(offsets[i] >= offsets[i - 1], "E_TOKEN_TABLE", "offsets must be non-decreasing");
      table_.bytes.assign(bytes.data, bytes.data + bytes.size);
      table_.offsets.assign(offsets.data, offsets.data + offsets.size);
      table_.special.assign(special.data, special.data + special.size);
      return info.Env().Undefined();
    });
  }

  const TokenTable& table() const { return table_; }

 private:
  Napi::Value JsVocab(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), table_.vocab()); }

  Napi::Value JsByteOffsets(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      auto ids = TypedArg<int32_t>(info[0], "ids");
      CheckIds(table_, ids.data, ids.size, "ids");
      Napi::Int32Array out = Napi::Int32Array::New(info.Env(), ids.size + 1);
      ByteOffsets(table_, ids.data, ids.size, out.Data());
      return out;
    });
  }

  TokenTable table_;
};

Registration reg("token_table", TokenTableWrap::Init);

}  // namespace

const TokenTable& UnwrapTokenTable(const Napi::Value& v, const char* name) {
  if (!IsInstanceOf(v, "TokenTable"))
    throw Error("E_ARG_TYPE", std::string(name) + " must be a native TokenTable");
  return TokenTableWrap::Unwrap(v.As<Napi::Object>())->table();
}

void CheckIds(const TokenTable& t, const int32_t* ids, size_t n, const char* name) {
  const int32_t v = t.vocab();
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= v)
      throw Error("E_TOKEN_ID", std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                                    " is outside the vocabulary [0, " + std::to_string(v) + ")");
  }
}

void ByteOffsets(const TokenTable& t, const int32_t* ids, size_t n, int32_t* out) {
  int64_t acc = 0;
  out[0] = 0;
  for (size_t i = 0; i < n; ++i) {
    acc += t.length(ids[i]);
    if (acc > INT32_MAX) throw Error("E_TOO_LONG", "sequence is longer than 2^31 bytes");
    out[i + 1] = static_cast<int32_t>(acc);
  }
}

}  // namespace xopd
