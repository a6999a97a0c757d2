// The bytes of every token id of one tokenizer, uploaded once from JS (DESIGN section 2).
// Later native code (alignment, span projection) reads it; the JS object that owns one is the
// TokenTable class of tokenizer/binding.cc (other bindings unwrap it with tokenizer/binding.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace xopd {

struct TokenTable {
  std::vector<uint8_t> bytes;     // all tokens' bytes, concatenated
  std::vector<uint32_t> offsets;  // [vocab + 1]: token id i is bytes[offsets[i], offsets[i+1])
  std::vector<uint8_t> special;   // [vocab]: 1 for special (control) tokens

  int32_t vocab() const { return static_cast<int32_t>(offsets.size()) - 1; }
  uint32_t length(int32_t id) const { return offsets[id + 1] - offsets[id]; }
  const uint8_t* data(int32_t id) const { return bytes.data() + offsets[id]; }
};

// Builds a table from its three arrays; throws E_TOKEN_TABLE when they disagree.
void BuildTokenTable(const uint8_t* bytes, size_t nBytes, const uint32_t* offsets, size_t nOffsets,
                     const uint8_t* special, size_t nSpecial, TokenTable& out);

// Checks every id is in [0, vocab); names the first bad position.
void CheckIds(const TokenTable& t, const int32_t* ids, size_t n, const char* name);

// out[0] = 0, out[i+1] = out[i] + |bytes(ids[i])|. Caller checked the ids.
void ByteOffsets(const TokenTable& t, const int32_t* ids, size_t n, int32_t* out);

}  // namespace xopd
