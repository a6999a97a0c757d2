// What other stages' bindings need from the tokenizer binding: the TokenTable behind a JS object.
#pragma once
#include "common/binding.h"
#include "tokenizer/token_table.h"

namespace xopd {

// Throws xopd::Error E_ARG_TYPE when v is not a TokenTable object created by this addon.
const TokenTable& UnwrapTokenTable(const Napi::Value& v, const char* name);

}  // namespace xopd
