// JS binding of the token table:
//   new TokenTable(bytes: Uint8Array, offsets: Uint32Array [vocab+1], special: Uint8Array [vocab])
//   table.byteOffsets(ids) -> Int32Array [n+1];  table.vocab
#include "tokenizer/binding.h"

#include <string>

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

  explicit TokenTableWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TokenTableWrap>(info) {
    Guard(info, [&]() -> Napi::Value {
      auto bytes = TypedArg<uint8_t>(info[0], "bytes");
      auto offsets = TypedArg<uint32_t>(info[1], "offsets");
      auto special = TypedArg<uint8_t>(info[2], "special");
      BuildTokenTable(bytes.data, bytes.size, offsets.data, offsets.size, special.data, special.size, table_);
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

}  // namespace xopd
