// C ABI tests (CTest: plugin_abi; also run by tests/abi/test_ctest.py). They drive the loader and the host
// table from C++ without Python: bad plugins refused with a message naming the problem and the registry left
// exactly as it was, the same file loaded once, concurrent loads, kernel failures surfacing as errors, host
// entries answering bad input with a status (never an exception), and struct-size adaptation.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "plugin_host.h"
#include "vt/abi/loader.h"
#include "vt/core/ops.h"

namespace {

int g_failures = 0;

#define CHECK(cond)                                                                \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                                \
    }                                                                              \
  } while (0)

std::string plugin(const char* group, const char* name) { return std::string(VT_ABI_TEST_PLUGINS) + "/" + group + "/" + name; }

// Runs `fn`, expecting a vt::Error whose message contains `needle`; returns the error kind.
vt::ErrorKind expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
  } catch (const vt::Error& e) {
    if (std::string(e.what()).find(needle) == std::string::npos) {
      std::fprintf(stderr, "error message lacks '%s': %s\n", needle.c_str(), e.what());
      ++g_failures;
    }
    return e.kind();
  }
  std::fprintf(stderr, "expected an error containing '%s', got none\n", needle.c_str());
  ++g_failures;
  return vt::ErrorKind::Runtime;
}

vt::Stack call(const char* op, vt::Stack args) {
  vt::OperatorEntry* e = vt::Dispatcher::get().find(op);
  VT_CHECK(e, "no op ", op);
  e->call_boxed(vt::Layer::Python, args);
  return args;
}

void test_bad_plugins_leave_registry_unchanged() {
  struct Case {
    const char* file;
    const char* needle;
  } cases[] = {
      {"wrong_major.so", "built for plugin ABI 2.0"},
      {"newer_minor.so", "newer than this vibetensor's"},
      {"missing_init.so", "does not export vt_plugin_init"},
      {"missing_version.so", "does not export vt_plugin_abi_version"},
      {"failing_init.so", "failing_init gives up after registering two ops"},
      {"duplicate_op.so", "vt::add is already defined"},
      {"no_such_plugin.so", "cannot open"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> before = vt::Dispatcher::get().op_names();
    expect_error([&] { vt::abi::load_plugin(plugin("bad", c.file)); }, c.needle);
    CHECK(vt::Dispatcher::get().op_names() == before);
  }
  setenv("VT_TEST_PLUGIN_THROW_IN_INIT", "1", 1);
  expect_error([] { vt::abi::load_plugin(plugin("bad", "throws.so")); }, "C++ exception");
  unsetenv("VT_TEST_PLUGIN_THROW_IN_INIT");
  CHECK(vt::Dispatcher::get().find("throws::op") == nullptr);
}

void test_reference_plugin_and_duplicates() {
  vt::abi::PluginRecord r = vt::abi::load_plugin(plugin("reference", "vt_ref_cpu.so"));
  CHECK(r.ops.size() == 4 && r.abi_version == VT_PLUGIN_ABI_VERSION);
  // The same file again, also through another path: the first record, no second init.
  std::string link = std::filesystem::temp_directory_path() / ("vt_abi_link_" + std::to_string(getpid()) + ".so");
  std::filesystem::remove(link);
  std::filesystem::create_symlink(plugin("reference", "vt_ref_cpu.so"), link);
  CHECK(vt::abi::load_plugin(link).path == r.path);
  std::filesystem::remove(link);
  // A copy is another file defining the same ops: refused, nothing changed.
  std::string copy = std::filesystem::temp_directory_path() / ("vt_abi_copy_" + std::to_string(getpid()) + ".so");
  std::filesystem::copy_file(plugin("reference", "vt_ref_cpu.so"), copy, std::filesystem::copy_options::overwrite_existing);
  std::vector<std::string> before = vt::Dispatcher::get().op_names();
  expect_error([&] { vt::abi::load_plugin(copy); }, "ref::add is already defined");
  CHECK(vt::Dispatcher::get().op_names() == before);
  std::filesystem::remove(copy);

  vt::Tensor a = vt::ops::full(vt::DimVector{2, 3}, vt::Scalar(1.5), vt::ScalarType::Float32, vt::kCPU);
  vt::Tensor b = vt::ops::full(vt::DimVector{2, 3}, vt::Scalar(2.0), vt::ScalarType::Float32, vt::kCPU);
  vt::Stack out = call("ref::add", {a, b});
  const vt::Tensor& sum = std::get<vt::Tensor>(out.at(0));
  CHECK(sum.numel() == 6 && sum.data<float>()[5] == 3.5f);
  expect_error([&] { call("ref::add", {a, vt::ops::full(vt::DimVector{3}, vt::Scalar(1.0), vt::ScalarType::Float32, vt::kCPU)}); },
               "ref::add: self and other must have the same shape");
}

void test_concurrent_loads() {
  std::vector<vt::abi::PluginRecord> records(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < records.size(); ++i)
    threads.emplace_back([&, i] { records[i] = vt::abi::load_plugin(plugin("bad", "kernel_error.so")); });
  for (std::thread& t : threads) t.join();
  for (const auto& r : records) CHECK(r.path == records[0].path && r.ops == records[0].ops && r.ops.size() == 4);
  size_t n = 0;
  for (const auto& p : vt::abi::loaded_plugins()) n += p.path == records[0].path;
  CHECK(n == 1);
}

void test_kernel_failures() {
  vt::Tensor x = vt::ops::full(vt::DimVector{2}, vt::Scalar(1.0), vt::ScalarType::Float32, vt::kCPU);
  CHECK(expect_error([&] { call("kernel_error::with_message", {x}); },
                     "kernel_error::with_message refuses every input") == vt::ErrorKind::Value);
  expect_error([&] { call("kernel_error::without_message", {x}); }, "failed with status 1 (no message)");
  CHECK(expect_error([&] { call("kernel_error::bad_host_call", {x}); }, "argument index 5 out of range") ==
        vt::ErrorKind::Index);
  expect_error([&] { call("kernel_error::no_result", {x}); }, "without setting result 0");
  vt::abi::load_plugin(plugin("bad", "throws.so"));  // init succeeds without the environment variable
  expect_error([&] { call("throws::op", {x}); }, "let a C++ exception escape");
}

void test_host_entries_return_status() {
  const vt_host_api* h = vt::abi::host_table_for(VT_PLUGIN_ABI_VERSION);
  CHECK(h->struct_size == sizeof(vt_host_api) && h->abi_version == VT_PLUGIN_ABI_VERSION);
  CHECK(VT_HOST_HAS(h, tensor_record_stream));
  vt_tensor_info info{};
  info.struct_size = sizeof info;
  CHECK(h->tensor_info(nullptr, &info) == VT_ERROR_VALUE);
  CHECK(std::string(h->last_error()).find("NULL tensor handle") != std::string::npos);
  int64_t sizes[] = {2, 3};
  vt_tensor t = nullptr;
  CHECK(h->empty(2, sizes, vt_dtype{2, 12, 1}, vt_device{VT_DEVICE_CPU, 0}, &t) == VT_ERROR_TYPE);
  int64_t negative[] = {-1};
  CHECK(h->empty(1, negative, vt_dtype{2, 32, 1}, vt_device{VT_DEVICE_CPU, 0}, &t) == VT_ERROR_VALUE);
  // Outside a kernel call a new handle is the caller's: released explicitly.
  CHECK(h->empty(2, sizes, vt_dtype{2, 32, 1}, vt_device{VT_DEVICE_CPU, 0}, &t) == VT_OK);
  // A plugin built against an older minor passes a shorter struct: the host fills only what it has room for.
  struct {
    vt_tensor_info info;
    unsigned char sentinel[64];
  } shorter;
  std::memset(&shorter, 0xAB, sizeof shorter);
  shorter.info.struct_size = offsetof(vt_tensor_info, numel);
  CHECK(h->tensor_info(t, &shorter.info) == VT_OK);
  CHECK(shorter.info.ndim == 2 && shorter.info.sizes[1] == 3 && shorter.info.struct_size == offsetof(vt_tensor_info, numel));
  const unsigned char* tail = reinterpret_cast<const unsigned char*>(&shorter) + offsetof(vt_tensor_info, numel);
  CHECK(std::all_of(tail, tail + sizeof(int64_t), [](unsigned char c) { return c == 0xAB; }));
  info.struct_size = 0;
  CHECK(h->tensor_info(t, &info) == VT_ERROR_VALUE);
  CHECK(std::string(h->last_error()).find("struct_size") != std::string::npos);
  CHECK(h->tensor_release(t) == VT_OK);
  // ... and the fields an older header lacked read as zero.
  vt_iter_config cfg;
  std::memset(&cfg, 0x5A, sizeof cfg);
  cfg.struct_size = offsetof(vt_iter_config, reduce_ndims);
  vt_iter_config read = vt::abi::read_versioned(&cfg, "vt_iter_config");
  CHECK(read.reduce_ndims == 0 && read.reduce_dims == nullptr && read.keepdim == 0 && read.reduce_init == 0.0);
  // Registration is refused once init has returned.
  vt_registrar_s closed;
  closed.open = false;
  CHECK(h->define_op(&closed, "late::op(Tensor self) -> Tensor", VT_POLICY_SAME_DEVICE) == VT_ERROR_RUNTIME);
  // CUDA entries on a bad device index answer with a status, GPU or not.
  void* stream = nullptr;
  CHECK(h->cuda_current_stream(-1, &stream) == VT_ERROR_VALUE);
  CHECK(h->cuda_current_stream(127, &stream) != VT_OK);
  int32_t count = -1;
  CHECK(h->cuda_device_count(&count) == VT_OK && count >= 0);
  void* block = nullptr;
  if (count == 0) {  // no GPU: every CUDA entry refuses plainly
    CHECK(h->cuda_malloc(0, 256, nullptr, &block) != VT_OK && block == nullptr);
    CHECK(std::string(h->last_error()).size() > 0);
    return;
  }
  // With a GPU: the caching allocator's memory, ordered on streams, through the table.
  int32_t ordinal = -1;
  CHECK(h->cuda_physical_device(0, &ordinal) == VT_OK && ordinal == 0);
  CHECK(h->cuda_current_stream(0, &stream) == VT_OK);
  CHECK(h->cuda_malloc(0, 1 << 20, nullptr, &block) == VT_OK && block != nullptr);
  CHECK(h->cuda_record_stream(0, block, 0, stream) == VT_OK);
  int probe = 0;
  CHECK(h->cuda_record_stream(0, &probe, 0, stream) == VT_ERROR_RUNTIME);  // not an allocator block
  CHECK(h->cuda_free(0, block) == VT_OK);
  vt_tensor g;
  CHECK(h->empty(2, sizes, vt_dtype{2, 32, 1}, vt_device{VT_DEVICE_CUDA, 0}, &g) == VT_OK);
  CHECK(h->tensor_record_stream(g, 0, stream) == VT_OK);
  CHECK(h->tensor_record_stream(g, -1, stream) == VT_ERROR_VALUE);
  vt_tensor_info gi{};
  gi.struct_size = sizeof gi;
  CHECK(h->tensor_info(g, &gi) == VT_OK && gi.device.device_type == VT_DEVICE_CUDA && gi.device.device_id == 0);
  CHECK(h->tensor_release(g) == VT_OK);
}

}  // namespace

int main() {
  test_bad_plugins_leave_registry_unchanged();
  test_reference_plugin_and_duplicates();
  test_concurrent_loads();
  test_kernel_failures();
  test_host_entries_return_status();
  if (g_failures) std::fprintf(stderr, "%d check(s) failed\n", g_failures);
  else std::printf("plugin ABI: all checks passed\n");
  return g_failures ? 1 : 0;
}
