#pragma once
// Loading native plugins (vt/abi/vt_plugin.h) into the dispatcher.
//
// Note [Plugin loading]
// load_plugin dlopens the file with RTLD_NOW | RTLD_LOCAL (every symbol resolved up front; the plugin's symbols
// stay out of the global namespace), refuses a foreign ABI major or a newer minor before running any plugin
// code other than vt_plugin_abi_version, and calls vt_plugin_init with a registrar that only stages. If init
// returns VT_OK, the staged ops are defined in one all-or-nothing batch (Dispatcher::define_all); if init fails,
// or the batch finds a name taken, nothing reaches the dispatcher and the library is closed again. A file is
// identified by (device, inode): loading it again, under any path, returns the first load's record without
// running init twice. An initialised plugin is never unloaded (kernels, and pointers it handed out, must stay
// valid for the life of the process). Loads are serialised by one mutex; calls to loaded ops take no lock.
#include <cstdint>
#include <string>
#include <vector>

namespace vt::abi {

struct PluginRecord {
  std::string path;          // as first loaded
  uint32_t abi_version = 0;  // the plugin's (major << 16 | minor)
  std::vector<std::string> ops;
};

// Loads the plugin at `path` (Note [Plugin loading]). Every failure is a RuntimeError naming the path and the
// problem (for a failed init, the plugin's own message).
PluginRecord load_plugin(const std::string& path);
std::vector<PluginRecord> loaded_plugins();

}  // namespace vt::abi
