// Schema-lite parser: "ns::op(Tensor self, int[] dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor".
// Types: Tensor, Tensor[], Tensor?[] (a list whose elements may be None), int, int[], float, bool, Scalar,
// ScalarType, Device, str; a trailing '?' makes an argument optional; '*' starts keyword-only arguments. Returns: one type, or a parenthesised list, which may be
// empty ("-> ()") for ops that only mutate their arguments.
#include <cctype>
#include <charconv>

#include "vt/core/dispatcher.h"

namespace vt {

std::string_view arg_type_name(ArgType t) {
  constexpr std::string_view names[] = {"Tensor", "Tensor[]", "int",        "int[]",  "float",
                                        "bool",   "Scalar",   "ScalarType", "Device", "str"};
  return names[int(t)];
}

namespace {

struct Parser {
  std::string_view text;
  size_t pos = 0;

  [[noreturn]] void fail(std::string_view what) {
    VT_FAIL("bad schema '", text, "': ", what, " at offset ", pos);
  }
  void skip_ws() {
    while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
  }
  bool eat(std::string_view tok) {
    skip_ws();
    if (text.substr(pos, tok.size()) == tok) {
      pos += tok.size();
      return true;
    }
    return false;
  }
  void expect(std::string_view tok) {
    if (!eat(tok)) fail("expected '" + std::string(tok) + "'");
  }
  std::string ident() {
    skip_ws();
    size_t start = pos;
    while (pos < text.size() && (std::isalnum(static_cast<unsigned char>(text[pos])) || text[pos] == '_' ||
                                 text[pos] == ':' || text[pos] == '.'))
      ++pos;
    if (start == pos) fail("expected a name");
    return std::string(text.substr(start, pos - start));
  }
  bool optional_elements = false;  // set by type() for "Tensor?[]"
  ArgType type() {
    std::string t = ident();
    optional_elements = t == "Tensor" && text.substr(pos, 3) == "?[]";
    if (optional_elements) pos += 1;
    bool list = eat("[]");
    if (t == "Tensor") return list ? ArgType::TensorList : ArgType::Tensor;
    if (t == "int") return list ? ArgType::IntList : ArgType::Int;
    if (list) fail("only Tensor[] and int[] lists are supported");
    if (t == "float") return ArgType::Float;
    if (t == "bool") return ArgType::Bool;
    if (t == "Scalar") return ArgType::Scalar;
    if (t == "ScalarType") return ArgType::ScalarType;
    if (t == "Device") return ArgType::Device;
    if (t == "str") return ArgType::Str;
    fail("unknown type '" + t + "'");
  }
  IValue number(ArgType t) {
    skip_ws();
    size_t start = pos;
    while (pos < text.size() && (std::isalnum(static_cast<unsigned char>(text[pos])) || text[pos] == '-' ||
                                 text[pos] == '.' || text[pos] == '+'))
      ++pos;
    std::string tok(text.substr(start, pos - start));
    bool is_float = tok.find_first_of(".eE") != std::string::npos && tok.find("0x") == std::string::npos;
    try {
      if (is_float || t == ArgType::Float) {
        double d = std::stod(tok);
        return t == ArgType::Scalar ? IValue{Scalar(d)} : IValue{d};
      }
      int64_t v = std::stoll(tok);
      if (t == ArgType::Float) return IValue{double(v)};
      return t == ArgType::Scalar ? IValue{Scalar(v)} : IValue{v};
    } catch (const std::exception&) {
      fail("bad default '" + tok + "'");
    }
  }
  IValue default_value(ArgType t) {
    skip_ws();
    if (eat("None")) return IValue{};
    if (eat("True")) return t == ArgType::Scalar ? IValue{Scalar(true)} : IValue{true};
    if (eat("False")) return t == ArgType::Scalar ? IValue{Scalar(false)} : IValue{false};
    if (t == ArgType::IntList) {
      std::vector<int64_t> v;
      expect("[");
      while (!eat("]")) {
        v.push_back(std::get<int64_t>(number(ArgType::Int)));
        eat(",");
      }
      return IValue{v};
    }
    if (t == ArgType::TensorList) {  // only the empty list: a list of tensors has no literal
      expect("[");
      expect("]");
      return IValue{std::vector<Tensor>{}};
    }
    if (t == ArgType::Str) {
      char q = (skip_ws(), pos < text.size() ? text[pos] : 0);
      if (q != '"' && q != '\'') fail("string defaults are quoted");
      size_t end = text.find(q, pos + 1);
      if (end == std::string_view::npos) fail("unterminated string");
      std::string v(text.substr(pos + 1, end - pos - 1));
      pos = end + 1;
      return IValue{v};
    }
    return number(t);
  }
};

}  // namespace

FunctionSchema parse_schema(std::string_view text) {
  Parser p{text};
  FunctionSchema s;
  s.text = std::string(text);
  s.name = p.ident();
  p.expect("(");
  bool kwarg_only = false;
  if (!p.eat(")")) {
    do {
      if (p.eat("*")) {
        kwarg_only = true;
        continue;
      }
      Argument a;
      a.type = p.type();
      a.optional_elements = p.optional_elements;
      a.optional = p.eat("?");
      a.name = p.ident();
      a.kwarg_only = kwarg_only;
      if (p.eat("=")) a.default_value = p.default_value(a.type);
      for (const Argument& b : s.args)
        if (b.name == a.name) p.fail("duplicate argument '" + a.name + "'");
      s.args.push_back(std::move(a));
    } while (p.eat(","));
    p.expect(")");
  }
  p.expect("->");
  if (p.eat("(")) {
    if (!p.eat(")")) {
      do s.returns.push_back(p.type());
      while (p.eat(","));
      p.expect(")");
    }
  } else {
    s.returns.push_back(p.type());
  }
  p.skip_ws();
  if (p.pos != text.size()) p.fail("trailing text");
  return s;
}

}  // namespace vt
