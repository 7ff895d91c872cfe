// The plugin loader (Note [Plugin loading] in vt/abi/loader.h) and the host table plugins receive.
#include "vt/abi/loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "plugin_host.h"

namespace vt::abi {

namespace {

vt_host_api make_host_table() {
  vt_host_api t{};
  t.struct_size = sizeof(vt_host_api);
  t.abi_version = VT_PLUGIN_ABI_VERSION;
  fill_call_entries(t);
  fill_tensor_entries(t);
  fill_cuda_entries(t);
  return t;
}

struct Loaded {
  PluginRecord record;
  dev_t dev;
  ino_t ino;
};

std::mutex g_load_mu;
std::vector<std::unique_ptr<Loaded>> g_loaded;  // guarded by g_load_mu; never shrinks

std::string version_str(uint32_t v) { return std::to_string(v >> 16) + "." + std::to_string(v & 0xffff); }

// Closes the library unless asked to keep it; used on every failure before init succeeded.
struct LibraryHandle {
  void* h = nullptr;
  ~LibraryHandle() {
    if (h) dlclose(h);
  }
  void* release() { return std::exchange(h, nullptr); }
};

template <typename Fn>
Fn symbol(void* h, const char* name) {
  return reinterpret_cast<Fn>(dlsym(h, name));
}

}  // namespace

// Note [Plugin ABI versioning]: tables are append-only, so every minor of our major reads a prefix of the same
// table; a change that needs a real adapter (an entry whose meaning changed) goes here, keyed by minor.
const vt_host_api* host_table_for(uint32_t plugin_version) {
  static const vt_host_api table = make_host_table();
  VT_INTERNAL_ASSERT(plugin_version >> 16 == VT_PLUGIN_ABI_MAJOR && (plugin_version & 0xffff) <= VT_PLUGIN_ABI_MINOR);
  return &table;
}

PluginRecord load_plugin(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_load_mu);
  struct stat st {};
  VT_CHECK(::stat(path.c_str(), &st) == 0, "load_library: cannot open '", path, "': ", std::strerror(errno));
  for (const auto& l : g_loaded)
    if (l->dev == st.st_dev && l->ino == st.st_ino) return l->record;  // the same file: loaded once

  LibraryHandle lib{dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)};
  if (!lib.h) {
    const char* why = dlerror();
    VT_FAIL("load_library: cannot load '", path, "': ", why ? why : "unknown dlopen error");
  }
  auto version_fn = symbol<uint32_t (*)()>(lib.h, "vt_plugin_abi_version");
  auto init_fn = symbol<vt_status (*)(const vt_host_api*, vt_registrar*)>(lib.h, "vt_plugin_init");
  VT_CHECK(version_fn, "load_library: '", path, "' is not a vibetensor plugin: it does not export ",
           "vt_plugin_abi_version (define it with VT_PLUGIN_DEFINE_ABI_VERSION() from vt_plugin.h)");
  VT_CHECK(init_fn, "load_library: '", path, "' is not a vibetensor plugin: it does not export vt_plugin_init");
  uint32_t version = 0;
  try {
    version = version_fn();
  } catch (...) {
    VT_FAIL("load_library: '", path, "': vt_plugin_abi_version let a C++ exception escape through the C plugin ABI");
  }
  VT_CHECK(version >> 16 == VT_PLUGIN_ABI_MAJOR, "load_library: '", path, "' was built for plugin ABI ",
           version_str(version), ", but this vibetensor speaks ABI ", VT_PLUGIN_ABI_MAJOR, ".x; rebuild the plugin ",
           "against this vibetensor's vt_plugin.h");
  VT_CHECK((version & 0xffff) <= VT_PLUGIN_ABI_MINOR, "load_library: '", path, "' was built for plugin ABI ",
           version_str(version), ", newer than this vibetensor's ", version_str(VT_PLUGIN_ABI_VERSION),
           "; upgrade vibetensor or rebuild the plugin against its vt_plugin.h");

  vt_registrar_s reg;
  reg.plugin = path;
  set_error_message("");
  vt_status status;
  try {
    status = init_fn(host_table_for(version), &reg);
  } catch (...) {
    set_error_message("vt_plugin_init let a C++ exception escape through the C plugin ABI");
    status = VT_ERROR_INTERNAL;
  }
  reg.open = false;
  if (status != VT_OK) {
    const std::string& msg = error_message();
    VT_FAIL("load_library: '", path, "': vt_plugin_init failed",
                 msg.empty() ? " with status " + std::to_string(int(status)) : ": " + msg,
                 "; nothing it registered was kept");
  }

  std::vector<OpDefinition> defs;
  PluginRecord record{path, version, {}};
  for (vt_registrar_s::StagedOp& op : reg.ops) {
    OpDefinition d{op.schema, op.policy, OpKind::Primitive, {}};
    record.ops.push_back(op.schema.name);
    for (int key = 0; key < 2; ++key) {
      const vt_registrar_s::Kernel& k = op.kernels[key];
      if (k.fn) d.kernels.emplace_back(key == VT_KEY_CPU ? DispatchKey::CPU : DispatchKey::CUDA,
                                       make_plugin_kernel(op.schema.name, k.fn, k.user_data));
    }
    defs.push_back(std::move(d));
  }
  try {
    Dispatcher::get().define_all(std::move(defs));
  } catch (const Error& e) {
    lib.release();  // init succeeded, so the plugin may hold state: it stays loaded, with no ops
    VT_FAIL("load_library: '", path, "': ", e.what(), "; none of the plugin's ops were registered");
  }
  lib.release();  // initialised: never unloaded (Note [Plugin loading])
  g_loaded.push_back(std::make_unique<Loaded>(Loaded{record, st.st_dev, st.st_ino}));
  return record;
}

std::vector<PluginRecord> loaded_plugins() {
  std::lock_guard<std::mutex> lock(g_load_mu);
  std::vector<PluginRecord> out;
  for (const auto& l : g_loaded) out.push_back(l->record);
  return out;
}

}  // namespace vt::abi
