// Safetensors header validation (Note [Safetensors validation] in vt/interop/safetensors.h): from the raw file
// image to a Header whose every tensor is known to lie inside the file, with a byte size that matches its dtype
// and shape, packed back to back with the others from the first byte of the data section to the last.
#include <algorithm>
#include <array>

#include "safetensors_json.h"
#include "vt/interop/safetensors.h"

namespace vt::safetensors {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Every dtype of the format, in the reference writer's order (its `Dtype` enum): files list larger ranks first.
constexpr std::array<FileDtype, 22> kDtypes{{
    {"BOOL", 8, 0, ScalarType::Bool},     {"F4", 4, 1, {}},           {"F6_E2M3", 6, 2, {}},
    {"F6_E3M2", 6, 3, {}},                {"U8", 8, 4, ScalarType::UInt8},
    {"I8", 8, 5, ScalarType::Int8},       {"F8_E5M2", 8, 6, {}},      {"F8_E4M3", 8, 7, {}},
    {"F8_E8M0", 8, 8, {}},                {"F8_E4M3FNUZ", 8, 9, {}},  {"F8_E5M2FNUZ", 8, 10, {}},
    {"I16", 16, 11, ScalarType::Int16},   {"U16", 16, 12, {}},        {"F16", 16, 13, ScalarType::Float16},
    {"BF16", 16, 14, ScalarType::BFloat16}, {"I32", 32, 15, ScalarType::Int32}, {"U32", 32, 16, {}},
    {"F32", 32, 17, ScalarType::Float32}, {"C64", 64, 18, {}},        {"F64", 64, 19, ScalarType::Float64},
    {"I64", 64, 20, ScalarType::Int64},   {"U64", 64, 21, {}},
}};

using json::Value;

// A JSON number that must be a u64, as serde's usize: no sign, fraction or exponent, no overflow.
uint64_t as_u64(const Value& v, const std::string& tensor, const char* field) {
  if (v.kind != Value::Kind::Number)
    reject("schema", tensor, int64_t(v.offset), detail::str_cat(field, " must hold integers, found ", json::kind_name(v.kind)));
  uint64_t x = 0;
  for (char c : v.text) {
    if (c < '0' || c > '9' || x > (UINT64_MAX - uint64_t(c - '0')) / 10)
      reject("schema", tensor, int64_t(v.offset),
             detail::str_cat(field, " holds ", v.text, ", which is not an unsigned 64-bit integer"));
    x = x * 10 + uint64_t(c - '0');
  }
  return x;
}

struct Parsed {
  Entry entry;
  uint64_t key_offset;
};

Entry parse_entry(const std::string& name, const Value& v) {
  if (v.kind != Value::Kind::Object)
    reject("schema", name, int64_t(v.offset), detail::str_cat("expected an object, found ", json::kind_name(v.kind)));
  const Value *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
  for (const json::Member& m : v.members) {
    const Value** slot = m.key == "dtype" ? &dtype : m.key == "shape" ? &shape : m.key == "data_offsets" ? &offsets : nullptr;
    if (!slot) continue;  // unknown fields are allowed, as the reference reader allows them
    if (*slot) reject("schema", name, int64_t(m.offset), "field '" + m.key + "' appears twice");
    *slot = &m.value;
  }
  for (auto [field, slot] : {std::pair{"dtype", dtype}, {"shape", shape}, {"data_offsets", offsets}})
    if (!slot) reject("schema", name, int64_t(v.offset), detail::str_cat("missing field '", field, "'"));
  if (dtype->kind != Value::Kind::String)
    reject("schema", name, int64_t(dtype->offset), detail::str_cat("dtype must be a string, found ", json::kind_name(dtype->kind)));
  Entry e{name, find_dtype(dtype->text), {}, 0, 0};
  if (!e.dtype) reject("dtype", name, int64_t(dtype->offset), "unknown dtype \"" + dtype->text + "\"");
  if (shape->kind != Value::Kind::Array)
    reject("schema", name, int64_t(shape->offset), detail::str_cat("shape must be an array, found ", json::kind_name(shape->kind)));
  for (const Value& d : shape->items) e.shape.push_back(as_u64(d, name, "shape"));
  if (offsets->kind != Value::Kind::Array || offsets->items.size() != 2)
    reject("schema", name, int64_t(offsets->offset), "data_offsets must be an array of two integers [begin, end]");
  e.begin = as_u64(offsets->items[0], name, "data_offsets");
  e.end = as_u64(offsets->items[1], name, "data_offsets");
  return e;
}

Metadata parse_metadata(const Value& v) {
  if (v.kind != Value::Kind::Object)
    reject("schema", "", int64_t(v.offset), detail::str_cat("__metadata__ must be an object of strings, found ",
                                                             json::kind_name(v.kind)));
  Metadata out;
  for (const json::Member& m : v.members) {
    if (m.value.kind != Value::Kind::String)
      reject("schema", "", int64_t(m.value.offset), detail::str_cat("__metadata__ value of \"", m.key,
                                                                    "\" must be a string, found ", json::kind_name(m.value.kind)));
    out.emplace_back(m.key, m.value.text);
  }
  // serde keeps the last of repeated keys; the format does not allow them, so refuse.
  std::vector<std::string_view> keys;
  for (auto& [k, val] : out) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  if (auto dup = std::adjacent_find(keys.begin(), keys.end()); dup != keys.end())
    reject("duplicate", "", int64_t(v.offset), "__metadata__ key \"" + std::string(*dup) + "\" appears twice");
  return out;
}

// Bytes the entry's dtype and shape need, overflow-checked.
uint64_t needed_bytes(const Entry& e, int64_t at) {
  uint64_t n = 1;
  for (uint64_t d : e.shape)
    if (__builtin_mul_overflow(n, d, &n))
      reject("overflow", e.name, at, "the number of elements of shape overflows 64 bits");
  uint64_t bits = uint64_t(e.dtype->bits);
  if (bits % 8 == 0) {
    if (__builtin_mul_overflow(n, bits / 8, &n)) reject("overflow", e.name, at, "the byte size overflows 64 bits");
    return n;
  }
  if (__builtin_mul_overflow(n, bits, &n)) reject("overflow", e.name, at, "the bit size overflows 64 bits");
  if (n % 8 != 0)
    reject("size", e.name, at, detail::str_cat("a ", e.dtype->name, " tensor of this shape does not end on a byte boundary"));
  return n / 8;
}

}  // namespace

void reject(const char* rule, const std::string& tensor, int64_t offset, const std::string& what) {
  std::string msg = "safetensors: ";
  if (!tensor.empty()) msg += "tensor '" + tensor + "': ";
  msg += what;
  if (offset >= 0) msg += detail::str_cat(" (at byte ", offset, " of the file)");
  throw SafetensorError(rule, tensor, offset, msg + " [" + rule + "]");
}

const FileDtype* find_dtype(std::string_view name) {
  for (const FileDtype& d : kDtypes)
    if (d.name == name) return &d;
  return nullptr;
}

const FileDtype& file_dtype(ScalarType t) {
  for (const FileDtype& d : kDtypes)
    if (d.vt == t) return d;
  VT_INTERNAL_ASSERT(false, "every vibetensor dtype has a safetensors name");
}

const Entry* Header::find(std::string_view name) const {
  auto it = std::lower_bound(tensors.begin(), tensors.end(), name,
                             [](const Entry& e, std::string_view n) { return e.name < n; });
  return it != tensors.end() && it->name == name ? &*it : nullptr;
}

Header parse_header(const uint8_t* file, uint64_t size) {
  if (size < 8) reject("header_too_small", "", 0, detail::str_cat("the file has ", size, " bytes, fewer than the 8-byte header length"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | file[i];
  if (n > kMaxHeaderBytes)
    reject("header_too_large", "", 0, detail::str_cat("header length ", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes"));
  if (8 + n > size)
    reject("header_length", "", 0, detail::str_cat("header length ", n, " runs past the end of the file (", size, " bytes)"));
  std::string_view text(reinterpret_cast<const char*>(file) + 8, size_t(n));
  if (size_t bad = json::find_invalid_utf8(text); bad != std::string_view::npos)
    reject("utf8", "", int64_t(8 + bad), "the header is not valid UTF-8");
  if (text.empty() || text[0] != '{') reject("header_start", "", 8, "the header must begin with '{'");

  Header h;
  h.data_start = 8 + n;
  Value root = json::parse(text, 8);
  std::vector<Parsed> parsed;
  bool seen_metadata = false;
  for (const json::Member& m : root.members) {
    if (m.key != "__metadata__") {
      parsed.push_back(Parsed{parse_entry(m.key, m.value), m.offset});
      continue;
    }
    if (seen_metadata) reject("duplicate", "", int64_t(m.offset), "__metadata__ appears twice");
    seen_metadata = true;
    // The reference reader takes null as "no metadata"; so do we.
    if (m.value.kind != Value::Kind::Null) h.metadata = parse_metadata(m.value);
  }
  std::stable_sort(parsed.begin(), parsed.end(), [](const Parsed& a, const Parsed& b) { return a.entry.name < b.entry.name; });
  for (size_t i = 1; i < parsed.size(); ++i)
    if (parsed[i].entry.name == parsed[i - 1].entry.name)
      reject("duplicate", parsed[i].entry.name, int64_t(parsed[i].key_offset), "the name appears twice in the header");

  auto at = [&](uint64_t data_offset) { return data_offset > uint64_t(INT64_MAX) - h.data_start ? -1 : int64_t(h.data_start + data_offset); };
  std::vector<const Entry*> by_offset;
  for (Parsed& p : parsed) {
    Entry& e = p.entry;
    if (e.end < e.begin)
      reject("offsets", e.name, at(e.begin), detail::str_cat("data_offsets [", e.begin, ", ", e.end, "] end before they begin"));
    uint64_t need = needed_bytes(e, at(e.begin));
    if (e.end - e.begin != need)
      reject("size", e.name, at(e.begin), detail::str_cat("data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin,
                                                          " bytes but a ", e.dtype->name, " tensor of this shape needs ", need));
  }
  h.tensors.reserve(parsed.size());
  for (Parsed& p : parsed) h.tensors.push_back(std::move(p.entry));
  for (const Entry& e : h.tensors) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return std::pair(a->begin, a->end) < std::pair(b->begin, b->end);
  });
  uint64_t expected = 0;
  for (const Entry* e : by_offset) {
    if (e->begin != expected)
      reject("offsets", e->name, at(e->begin),
             detail::str_cat("data_offsets [", e->begin, ", ", e->end, "] ", e->begin > expected ? "leave a gap after" : "overlap",
                             " the data that ends at byte ", expected, " of the data section; tensors must be packed back to back"));
    expected = e->end;
  }
  if (expected != size - h.data_start)
    reject("incomplete", "", at(expected), detail::str_cat("the tensors cover ", expected, " bytes of a data section of ",
                                                           size - h.data_start, "; they must cover it exactly"));
  return h;
}

}  // namespace vt::safetensors
