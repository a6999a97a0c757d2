#include "tokenizer/token_table.h"

#include <string>

#include "common/errors.h"

namespace xopd {

void BuildTokenTable(const uint8_t* bytes, size_t nBytes, const uint32_t* offsets, size_t nOffsets,
                     const uint8_t* special, size_t nSpecial, TokenTable& out) {
  XOPD_CHECK(nOffsets >= 2, "E_TOKEN_TABLE", "token table needs at least one token");
  XOPD_CHECK(nSpecial == nOffsets - 1, "E_TOKEN_TABLE", "special must have one entry per token");
  XOPD_CHECK(offsets[0] == 0 && offsets[nOffsets - 1] == nBytes, "E_TOKEN_TABLE",
             "offsets must start at 0 and end at the byte count");
  for (size_t i = 1; i < nOffsets; ++i)
    XOPD_CHECK(offsets[i] >= offsets[i - 1], "E_TOKEN_TABLE", "offsets must be non-decreasing");
  out.bytes.assign(bytes, bytes + nBytes);
  out.offsets.assign(offsets, offsets + nOffsets);
  out.special.assign(special, special + nSpecial);
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
