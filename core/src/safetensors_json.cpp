// A strict JSON reader and serde_json-compatible string writer for safetensors headers (safetensors_json.h).
// The reader is a recursive descent over the header bytes with an explicit depth limit, so a hostile header
// ("[[[[...") cannot exhaust the stack; it decodes strings as it goes and records file offsets for errors.
#include "safetensors_json.h"

#include <utility>

namespace vt::safetensors::json {
namespace {

constexpr int kMaxDepth = 128;

// JSON's two-character escapes: the letter after the backslash and the character it stands for. The reader
// also takes "\/" for '/'; the writer, like serde_json, never writes it.
constexpr std::pair<char, char> kShortEscapes[] = {
    {'"', '"'}, {'\\', '\\'}, {'b', '\b'}, {'f', '\f'}, {'n', '\n'}, {'r', '\r'}, {'t', '\t'}};
// The character `letter` escapes, or 0; the letter that escapes `c`, or 0.
char unescaped(char letter) {
  for (auto [l, c] : kShortEscapes)
    if (l == letter) return c;
  return 0;
}
char escape_letter(char c) {
  for (auto [l, ch] : kShortEscapes)
    if (ch == c) return l;
  return 0;
}

class Reader {
 public:
  Reader(std::string_view s, uint64_t base) : s_(s), base_(base) {}

  Value document() {
    skip_ws();
    Value v = value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("trailing characters after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    reject("json", "", int64_t(base_ + pos_), "invalid JSON in header: " + what);
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  void skip_ws() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  void expect(char c) {
    if (at_end() || s_[pos_] != c) fail(detail::str_cat("expected '", c, "'"));
    ++pos_;
  }
  void literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) fail("invalid literal");
    pos_ += word.size();
  }

  Value value(int depth) {
    if (depth >= kMaxDepth) fail("nesting deeper than 128 levels");
    Value v;
    v.offset = base_ + pos_;
    switch (peek()) {
      case '{': v.kind = Value::Kind::Object; object(v, depth); break;
      case '[': v.kind = Value::Kind::Array; array(v, depth); break;
      case '"': v.kind = Value::Kind::String; v.text = string(); break;
      case 't': v.kind = Value::Kind::Bool; literal("true"); v.text = "true"; break;
      case 'f': v.kind = Value::Kind::Bool; literal("false"); v.text = "false"; break;
      case 'n': v.kind = Value::Kind::Null; literal("null"); break;
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
          v.kind = Value::Kind::Number;
          v.text = number();
          break;
        }
        fail(at_end() ? "unexpected end of header" : "expected a value");
    }
    return v;
  }

  bool accept(char c) {
    if (at_end() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  // `open`, zero or more `element`s separated by commas, `close`.
  template <typename Element>
  void sequence(char open, char close, Element element) {
    expect(open);
    skip_ws();
    if (accept(close)) return;
    do {
      skip_ws();
      element();
      skip_ws();
    } while (accept(','));
    expect(close);
  }

  void object(Value& v, int depth) {
    sequence('{', '}', [&] {
      uint64_t key_at = base_ + pos_;
      if (peek() != '"' || at_end()) fail("expected a string key");
      std::string key = string();
      skip_ws();
      expect(':');
      skip_ws();
      Value item = value(depth + 1);
      v.members.push_back(Member{std::move(key), key_at, std::move(item)});
    });
  }

  void array(Value& v, int depth) {
    sequence('[', ']', [&] { v.items.push_back(value(depth + 1)); });
  }

  bool digit() const { return !at_end() && s_[pos_] >= '0' && s_[pos_] <= '9'; }
  std::string number() {
    size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (!digit()) fail("invalid number");
    if (s_[pos_] == '0') {
      ++pos_;
      if (digit()) fail("invalid number (leading zero)");
    } else {
      while (digit()) ++pos_;
    }
    if (accept('.')) {
      if (!digit()) fail("invalid number (no digit after '.')");
      while (digit()) ++pos_;
    }
    if (accept('e') || accept('E')) {
      if (!accept('+')) accept('-');
      if (!digit()) fail("invalid number (no digit in exponent)");
      while (digit()) ++pos_;
    }
    return std::string(s_.substr(start, pos_ - start));
  }

  uint32_t hex4() {
    if (pos_ + 4 > s_.size()) fail("unexpected end of \\u escape");
    uint32_t cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      cp <<= 4;
      if (c >= '0' && c <= '9') cp |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') cp |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') cp |= uint32_t(c - 'A' + 10);
      else fail("invalid hex digit in \\u escape");
    }
    return cp;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  // The bytes are already known to be valid UTF-8 (the caller checked the whole header).
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (at_end()) fail("unterminated string");
      char e = s_[pos_++];
      if (e == '/' || unescaped(e)) {
        out += e == '/' ? '/' : unescaped(e);
        continue;
      }
      if (e != 'u') {
        --pos_;
        fail("invalid escape");
      }
      uint32_t cp = hex4();
      if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone trailing surrogate in \\u escape");
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (s_.substr(pos_, 2) != "\\u") fail("lone leading surrogate in \\u escape");
        pos_ += 2;
        uint32_t low = hex4();
        if (low < 0xDC00 || low > 0xDFFF) fail("invalid trailing surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      }
      append_utf8(out, cp);
    }
  }

  std::string_view s_;
  uint64_t base_;
  size_t pos_ = 0;
};

}  // namespace

Value parse(std::string_view text, uint64_t base) { return Reader(text, base).document(); }

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t min, cp;
    if ((c & 0xE0) == 0xC0) len = 2, min = 0x80, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, min = 0x800, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, min = 0x10000, cp = c & 0x07;
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (char letter = escape_letter(ch)) {
      out += '\\';
      out += letter;
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += ch;
    }
  }
  out += '"';
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::Null: return "null";
    case Value::Kind::Bool: return "a boolean";
    case Value::Kind::Number: return "a number";
    case Value::Kind::String: return "a string";
    case Value::Kind::Array: return "an array";
    case Value::Kind::Object: return "an object";
  }
  return "?";
}

}  // namespace vt::safetensors::json
