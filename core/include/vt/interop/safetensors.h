#pragma once
// Safetensors: a file is an 8-byte little-endian header length n, n bytes of UTF-8 JSON (the header), then
// the data section. The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the data section) plus an optional "__metadata__" object of string to string.
//
// This module parses and validates headers (safetensors_header.cpp, over a small strict JSON reader in
// safetensors_json.cpp), writes files byte for byte as the `safetensors` package does (safetensors_save.cpp),
// and loads tensors (safetensors_load.cpp): zero-copy views of a private memory map on the CPU, or chunked
// reads through pinned staging buffers straight into device memory for a CUDA device.
//
// Note [Safetensors validation]
// A header is accepted only if every rule of the format holds; the first rule broken raises SafetensorError
// naming the rule, the tensor (when one is at fault) and the byte offset in the file:
//   header_too_small  the file is shorter than the 8-byte length prefix
//   header_too_large  n exceeds 100,000,000 bytes (the reference implementation's cap)
//   header_length     8 + n runs past the end of the file
//   utf8              the header is not valid UTF-8
//   header_start      the header does not begin with '{' (the format says it MUST)
//   json              the header is not valid JSON (syntax, nesting deeper than 128, trailing characters)
//   schema            a value has the wrong type, a field is missing or repeated, a number is not a u64
//   dtype             a dtype string the format does not define
//   duplicate         a tensor name appears twice
//   overflow          the product of a shape, or that times the element size, overflows 64 bits
//   size              end - begin differs from the bytes the dtype and shape need
//   offsets           sorted by (begin, end), each tensor does not start where the previous one ended
//   incomplete        the tensors do not end exactly at the end of the file
// Two more rules belong to loading, not to the format: "unsupported" (a dtype or rank vibetensor has no
// tensor for, raised for the tensors asked for before any is made) and "io" (the file shrank while read).
// Validation happens before any tensor is made, so a bad file never leaves anything half-loaded.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vt/core/tensor.h"

namespace vt::safetensors {

class SafetensorError : public Error {
 public:
  // `tensor` is "" and `offset` -1 when no tensor or byte is to blame.
  SafetensorError(std::string rule, std::string tensor, int64_t offset, const std::string& message)
      : Error(ErrorKind::Runtime, message), rule_(std::move(rule)), tensor_(std::move(tensor)), offset_(offset) {}
  const std::string& rule() const { return rule_; }
  const std::string& tensor() const { return tensor_; }
  int64_t offset() const { return offset_; }

 private:
  std::string rule_, tensor_;
  int64_t offset_;
};

// Raises SafetensorError worded "safetensors: tensor 'x': <what> (at byte N of the file) [rule]"; `tensor` ""
// and `offset` -1 leave those parts out.
[[noreturn]] void reject(const char* rule, const std::string& tensor, int64_t offset, const std::string& what);

// A dtype the format defines. `rank` orders dtypes as the reference writer does (larger sorts first);
// `vt` is the vibetensor dtype, if there is one.
struct FileDtype {
  std::string_view name;
  int bits;
  int rank;
  std::optional<ScalarType> vt;
};
const FileDtype* find_dtype(std::string_view name);  // nullptr if the format does not define it
const FileDtype& file_dtype(ScalarType t);

struct Entry {
  std::string name;
  const FileDtype* dtype;
  std::vector<uint64_t> shape;
  uint64_t begin, end;  // in the data section
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

struct Header {
  uint64_t data_start = 0;      // file offset of the data section (8 + n)
  std::vector<Entry> tensors;   // sorted by name (the order of the package's keys())
  std::optional<Metadata> metadata;
  const Entry* find(std::string_view name) const;
};

// Validates the whole file image (Note [Safetensors validation]); `size` is the file's length.
Header parse_header(const uint8_t* file, uint64_t size);

// ---- writing (safetensors_save.cpp) ----
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
// The bytes before the data section and the tensors in data order, as the `safetensors` package lays them
// out: tensors sorted by dtype rank (descending) then name, compact JSON, "__metadata__" first with its keys
// sorted, padded with spaces to a multiple of 8. Tensors must be contiguous with distinct, non-reserved names.
struct Layout {
  std::string prefix;     // length prefix + header
  NamedTensors ordered;
};
Layout plan_layout(const NamedTensors& tensors, const std::optional<Metadata>& metadata);
std::string save_bytes(const NamedTensors& tensors, const std::optional<Metadata>& metadata);
void save_file(const NamedTensors& tensors, const std::optional<Metadata>& metadata, const std::string& path);

// ---- reading (safetensors_load.cpp) ----
// An open file: the validated header plus the file's memory (a private, copy-on-write map of the file, or an
// in-memory image), which CPU tensors may view and keep alive (Note [Mapped storage]).
class MappedFile;
struct OpenFile {
  std::shared_ptr<MappedFile> file;
  Header header;
};
OpenFile open_fd(int fd);  // the caller keeps (and closes) fd; the map holds a duplicate
OpenFile open_bytes(std::string bytes);

// How bytes reach CPU tensors: Mmap views the file's memory (copying only a tensor whose bytes are not aligned
// to its element size); Pread reads into fresh memory (nothing keeps the file). Device loads always read.
enum class Backend { Mmap, Pread };
// The entries as tensors on `device`, all or nothing: any failure raises and leaves no tensor behind.
std::vector<Tensor> load_tensors(const OpenFile& f, const std::vector<const Entry*>& entries, Device device,
                                 Backend backend);

}  // namespace vt::safetensors
