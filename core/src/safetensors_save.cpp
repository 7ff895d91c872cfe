// Writing safetensors files byte-identical to the `safetensors` package's: the same tensor order (dtype rank
// descending, then name by bytes), the same compact JSON (serde_json's escaping, no spaces), "__metadata__"
// first, the same space padding to a multiple of 8. Where the package is not deterministic (it writes the
// metadata keys in hash order) we sort them; where it writes broken JSON (no tensors and an empty metadata
// object gives `{},"__metadata__":{}}`) we write `{"__metadata__":{}}`.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "safetensors_json.h"
#include "vt/core/ops.h"
#include "vt/interop/safetensors.h"

namespace vt::safetensors {
namespace {

void append_tensor_info(std::string& out, const std::string& name, const Tensor& t, uint64_t begin) {
  json::append_string(out, name);
  out += ":{\"dtype\":\"";
  out += file_dtype(t.dtype()).name;
  out += "\",\"shape\":[";
  for (int64_t d = 0; d < t.dim(); ++d) out += (d ? "," : "") + std::to_string(t.sizes()[size_t(d)]);
  out += detail::str_cat("],\"data_offsets\":[", begin, ",", begin + uint64_t(t.nbytes()), "]}");
}

// The bytes of a contiguous tensor, brought to the host if it lives on a device.
Tensor host_copy(const Tensor& t) {
  if (t.device().is_cpu()) return t;
  Tensor h = empty_tensor(t.sizes(), t.dtype(), kCPU);
  ops::copy_(h, t);
  return h;
}

}  // namespace

Layout plan_layout(const NamedTensors& tensors, const std::optional<Metadata>& metadata) {
  Layout out{"", tensors};
  for (const auto& [name, t] : out.ordered) {
    VT_CHECK_VALUE(t.defined(), "save: tensor `", name, "` is undefined");
    VT_CHECK_VALUE(name != "__metadata__", "save: `__metadata__` is reserved for the header's metadata and cannot name a tensor");
    VT_CHECK_VALUE(t.is_contiguous(), "You are trying to save a non contiguous tensor: `", name,
                   "` which is not allowed. It either means you are trying to save tensors which are reference of each "
                   "other in which case it's recommended to save only the full tensors, and reslice at load time, or "
                   "simply call `.contiguous()` on your tensor to pack it before saving.");
  }
  std::sort(out.ordered.begin(), out.ordered.end(), [](const auto& a, const auto& b) {
    int ra = file_dtype(a.second.dtype()).rank, rb = file_dtype(b.second.dtype()).rank;
    return ra != rb ? ra > rb : a.first < b.first;
  });
  for (size_t i = 1; i < out.ordered.size(); ++i)
    VT_CHECK_VALUE(out.ordered[i].first != out.ordered[i - 1].first, "save: the name `", out.ordered[i].first, "` is given twice");

  std::string header = "{";
  if (metadata) {
    Metadata sorted = *metadata;
    std::sort(sorted.begin(), sorted.end());
    header += "\"__metadata__\":{";
    for (size_t i = 0; i < sorted.size(); ++i) {
      VT_CHECK_VALUE(i == 0 || sorted[i].first != sorted[i - 1].first, "save: metadata key `", sorted[i].first, "` is given twice");
      if (i) header += ',';
      json::append_string(header, sorted[i].first);
      header += ':';
      json::append_string(header, sorted[i].second);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : out.ordered) {
    if (header.size() > 1) header += ',';
    append_tensor_info(header, name, t, offset);
    offset += uint64_t(t.nbytes());
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  uint64_t n = header.size();
  out.prefix.resize(8);
  for (int i = 0; i < 8; ++i) out.prefix[size_t(i)] = char((n >> (8 * i)) & 0xFF);
  out.prefix += header;
  return out;
}

std::string save_bytes(const NamedTensors& tensors, const std::optional<Metadata>& metadata) {
  Layout layout = plan_layout(tensors, metadata);
  std::string out = std::move(layout.prefix);
  for (const auto& [name, t] : layout.ordered) {
    Tensor h = host_copy(t);
    out.append(h.data_ptr(), size_t(h.nbytes()));
  }
  return out;
}

void save_file(const NamedTensors& tensors, const std::optional<Metadata>& metadata, const std::string& path) {
  Layout layout = plan_layout(tensors, metadata);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) VT_FAIL("save_file: cannot open '", path, "' for writing: ", std::strerror(errno));
  auto write = [&](const char* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f.get()) != n) VT_FAIL("save_file: writing '", path, "' failed: ", std::strerror(errno));
  };
  write(layout.prefix.data(), layout.prefix.size());
  for (const auto& [name, t] : layout.ordered) {
    Tensor h = host_copy(t);
    write(h.data_ptr(), size_t(h.nbytes()));
  }
  FILE* raw = f.release();
  if (std::fclose(raw) != 0) VT_FAIL("save_file: closing '", path, "' failed: ", std::strerror(errno));
}

}  // namespace vt::safetensors
