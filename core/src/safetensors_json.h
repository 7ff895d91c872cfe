#pragma once
// The JSON reader and writer behind safetensors headers (private to core/src). The reader is strict RFC 8259
// (what serde_json accepts): no comments, no trailing commas, no leading zeros, no lone surrogates, no raw
// control characters in strings, nesting at most 128 deep; it keeps every value's file offset so errors can
// name the byte. The writer escapes strings exactly as serde_json does, which byte-identical files need.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vt/interop/safetensors.h"

namespace vt::safetensors::json {

struct Member;

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  uint64_t offset = 0;        // file offset of the value's first byte
  std::string text;           // String: decoded UTF-8; Number: the literal as written; Bool: "true"/"false"
  std::vector<Value> items;   // Array
  std::vector<Member> members;  // Object, in file order (duplicates kept: the caller decides)
};

struct Member {
  std::string key;
  uint64_t offset;  // file offset of the key's opening quote
  Value value;
};

// Parses `text` as one JSON value followed only by whitespace. `base` is the file offset of text[0]. Raises
// SafetensorError (rule "json") naming the offset of the first bad byte.
Value parse(std::string_view text, uint64_t base);

// The offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code points past U+10FFFF
// included), or npos when `s` is valid.
size_t find_invalid_utf8(std::string_view s);

// Appends `s` as a JSON string literal: '"' and '\\' escaped, control characters as \b \t \n \f \r or \u00xx
// (lowercase hex), everything else (including '/', DEL and non-ASCII) written as is.
void append_string(std::string& out, std::string_view s);

const char* kind_name(Value::Kind k);

}  // namespace vt::safetensors::json
