// Python glue for native plugins: vt.ops.load_library and the list of loaded plugins (vt/abi/loader.h).
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "common.h"
#include "vt/abi/loader.h"
#include "vt/abi/vt_plugin.h"

namespace vt::py {

namespace {
nb::dict record_dict(const abi::PluginRecord& r) {
  nb::dict d;
  d["path"] = r.path;
  d["abi_version"] = std::to_string(r.abi_version >> 16) + "." + std::to_string(r.abi_version & 0xffff);
  d["ops"] = r.ops;
  return d;
}
}  // namespace

void bind_plugins(nb::module_& m) {
  m.def("load_library", [](const std::string& path) {
    abi::PluginRecord r;
    {
      nb::gil_scoped_release release;  // init runs plugin code, never Python; other threads may load meanwhile
      r = abi::load_plugin(path);
    }
    return record_dict(r);
  }, nb::arg("path"));
  m.def("loaded_libraries", [] {
    nb::list out;
    for (const abi::PluginRecord& r : abi::loaded_plugins()) out.append(record_dict(r));
    return out;
  });
  m.attr("PLUGIN_ABI_VERSION") = std::to_string(VT_PLUGIN_ABI_MAJOR) + "." + std::to_string(VT_PLUGIN_ABI_MINOR);
}

}  // namespace vt::py
