// vibetensor._C.topology: the CUDA probe and measurements as plain dicts and floats.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "vt/topology/measure.h"
#include "vt/topology/probe.h"

namespace nb = nanobind;

namespace vt::py {

void bind_topology(nb::module_& m) {
  using namespace vt::topology;
  m.def("runtime_info", [] {
    RuntimeInfo r = runtime_info();
    nb::dict d;
    d["driver_version"] = r.driver_version;
    d["runtime_version"] = r.runtime_version;
    d["error"] = r.error;
    return d;
  });
  m.def("devices", [] {
    nb::list out;
    for (const DeviceInfo& i : devices()) {
      nb::dict d;
      d["index"] = i.index;
      d["name"] = i.name;
      d["uuid"] = i.uuid;
      d["pci_bus_id"] = i.pci_bus_id;
      d["compute_capability"] = nb::make_tuple(i.cc_major, i.cc_minor);
      d["sm_count"] = i.sm_count;
      d["memory_bytes"] = i.total_memory;
      d["unified_addressing"] = i.unified_addressing;
      d["managed_memory"] = i.managed_memory;
      auto tri = [](int v) -> nb::object {
        if (v < 0) return nb::none();
        return nb::bool_(v != 0);
      };
      d["multicast_supported"] = tri(i.multicast_supported);
      d["fabric_handles_supported"] = tri(i.fabric_handles_supported);
      out.append(d);
    }
    return out;
  });
  m.def("peers", [](bool functional_check) {
    std::vector<PeerInfo> ps;
    {
      nb::gil_scoped_release release;
      ps = peers(functional_check);
    }
    nb::list out;
    for (const PeerInfo& p : ps) {
      nb::dict d;
      d["src"] = p.src;
      d["dst"] = p.dst;
      d["access_supported"] = p.access_supported;
      d["native_atomics"] = p.native_atomics;
      d["performance_rank"] = p.performance_rank;
      d["functional"] = p.functional;
      out.append(d);
    }
    return out;
  }, nb::arg("functional_check") = true);
  m.def("ce_copy_gbps", &ce_copy_gbps, nb::arg("src"), nb::arg("dst"), nb::arg("bytes"), nb::arg("iters"),
        nb::arg("bidirectional"), nb::call_guard<nb::gil_scoped_release>());
  m.def("sm_copy_gbps", &sm_copy_gbps, nb::arg("src"), nb::arg("dst"), nb::arg("bytes"), nb::arg("iters"),
        nb::arg("bidirectional"), nb::call_guard<nb::gil_scoped_release>());
  m.def("peer_latency_us", &peer_latency_us, nb::arg("src"), nb::arg("dst"), nb::arg("hops"),
        nb::call_guard<nb::gil_scoped_release>());
  m.def("host_to_device_gbps", &host_to_device_gbps, nb::call_guard<nb::gil_scoped_release>());
  m.def("device_to_host_gbps", &device_to_host_gbps, nb::call_guard<nb::gil_scoped_release>());
  m.def("device_local_copy_gbps", &device_local_copy_gbps, nb::call_guard<nb::gil_scoped_release>());
}

}  // namespace vt::py
