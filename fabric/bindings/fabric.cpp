// vibetensor._C.fabric: the route table, counters, the event ring and the P2P schedule executor as plain Python
// values; python/vibetensor/fabric builds Fabric, FabricTensor, collectives and traces on them.
#include <algorithm>

#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "common.h"
#include "vt/fabric/cross_device.h"
#include "vt/fabric/observe.h"
#include "vt/fabric/p2p.h"
#include "vt/fabric/routes.h"

namespace vt::py {
namespace {

using namespace vt::fabric;

Route route_from_name(const std::string& s) {
  if (s == "native") return Route::Native;
  if (s == "p2p") return Route::Peer;
  if (s == "staged") return Route::Staged;
  VT_FAIL_KIND(Value, "unknown route '", s, "' (native, p2p, staged)");
}
const char* route_str(Route r) {
  switch (r) {
    case Route::Native: return "native";
    case Route::Peer: return "p2p";
    case Route::Staged: return "staged";
    default: return "uncovered";
  }
}

nb::dict counters_dict(const PairCounters& c) {
  nb::dict d, fb;
  d["ops"] = c.ops;
  d["bytes"] = c.bytes;
  d["hits"] = c.hits;
  for (int i = 1; i < int(Reason::kCount); ++i) fb[reason_name(Reason(i))] = c.fallbacks[i];
  d["fallbacks"] = fb;
  return d;
}

// The fast path of the collectives' argument checks (Note [Lean collective front] in collectives.py): each
// input's device when every rule of collectives._validate holds (one CUDA tensor per device, equal shapes and
// dtypes, contiguous; outputs on their input's device, contiguous, same dtype, numel = input's * num / den),
// else None, and Python runs its own checks to name the problem. No message is built here.
nb::object collective_devices(const std::vector<Tensor>& ins, nb::handle outputs, int64_t num, int64_t den) {
  std::vector<Tensor> outs;
  if (!outputs.is_none() && !nb::try_cast(outputs, outs)) return nb::none();
  if (ins.empty() || (!outputs.is_none() && outs.size() != ins.size())) return nb::none();
  std::vector<int> devices;
  devices.reserve(ins.size());
  const Tensor& t0 = ins.front();
  for (size_t i = 0; i < ins.size(); ++i) {
    const Tensor& t = ins[i];
    const Device d = t.device();
    if (!d.is_cuda() || std::find(devices.begin(), devices.end(), d.index) != devices.end()) return nb::none();
    if (t.dtype() != t0.dtype() || !std::ranges::equal(t.sizes(), t0.sizes()) || !t.is_contiguous()) return nb::none();
    if (!outs.empty()) {
      const Tensor& o = outs[i];
      if (o.device() != d || o.dtype() != t.dtype() || !o.is_contiguous() || o.numel() * den != t.numel() * num)
        return nb::none();
    }
    devices.push_back(d.index);
  }
  return nb::cast(devices);
}

}  // namespace

void bind_fabric(nb::module_& m) {
  install_cross_device_hook();
  m.def("hold_route", [](int compute, int remote, const std::string& route, const std::string& reason) {
    hold_route(compute, remote, route_from_name(route), reason.empty() ? Reason::None : reason_from_name(reason));
  });
  m.def("release_route", &release_route);
  m.def("route", [](int compute, int remote) {
    Route r = route(compute, remote);
    return nb::make_tuple(route_str(r), r == Route::Staged ? reason_name(route_reason(compute, remote)) : "");
  });
  m.def("route_holders", &route_holders);
  m.def("reason_names", [] {
    std::vector<std::string> out;
    for (int i = 1; i < int(Reason::kCount); ++i) out.push_back(reason_name(Reason(i)));
    return out;
  });
  m.def("pair_counters", [](int c, int r) { return counters_dict(pair_counters(c, r)); });
  m.def("total_counters", [] { return counters_dict(total_counters()); });
  m.def("count", [](int c, int r, int64_t bytes, const std::string& route, const std::string& reason) {
    count(c, r, bytes, route_from_name(route), reason.empty() ? Reason::None : reason_from_name(reason));
  });
  m.def("reset_counters", &reset_counters);
  m.def("set_ring_capacity", &set_ring_capacity);
  m.def("ring_capacity", &ring_capacity);
  m.def("ring_dropped", &ring_dropped);
  m.def("clear_ring", &clear_ring);
  m.def("set_gpu_timing", &set_gpu_timing);
  m.def("gpu_timing", &gpu_timing);
  m.def("set_tracing", &set_tracing);
  m.def("tracing", &tracing);
  m.def("set_origin", &set_origin);
  m.def("origin_host_ns", &origin_host_ns);
  m.def("record_event", [](const std::string& kind, const std::string& name, int device, int peer, int64_t bytes,
                           uintptr_t stream, const std::string& reason, const std::string& detail) {
    static const std::pair<const char*, EventKind> kinds[] = {
        {"enqueue", EventKind::Enqueue}, {"complete", EventKind::Complete}, {"fallback", EventKind::Fallback},
        {"error", EventKind::Error},     {"collective", EventKind::Collective}, {"copy", EventKind::Copy}};
    for (const auto& [n, k] : kinds) {
      if (kind != n) continue;
      record_event({k, name, device, peer, bytes, stream, 0, reason.empty() ? Reason::None : reason_from_name(reason),
                    detail});
      return;
    }
    VT_FAIL_KIND(Value, "unknown fabric event kind '", kind, "'");
  }, nb::arg("kind"), nb::arg("name"), nb::arg("device") = -1, nb::arg("peer") = -1, nb::arg("bytes") = 0,
     nb::arg("stream") = 0, nb::arg("reason") = "", nb::arg("detail") = "");
  m.def("read_ring", [] {
    nb::list out;
    for (const ResolvedEvent& e : read_ring()) {
      nb::dict d;
      d["kind"] = event_kind_name(e.record.kind);
      d["name"] = e.record.name;
      d["device"] = e.record.device;
      d["peer"] = e.record.peer;
      d["bytes"] = e.record.bytes;
      d["stream"] = e.record.stream;
      d["host_ns"] = e.record.host_ns;
      d["reason"] = e.record.reason == Reason::None ? "" : reason_name(e.record.reason);
      d["detail"] = e.record.detail;
      d["gpu_start_us"] = e.gpu_start_us;
      d["gpu_end_us"] = e.gpu_end_us;
      out.append(d);
    }
    return out;
  });

  nb::class_<P2PWork>(m, "P2PWork")
      .def("query", &P2PWork::query)
      .def("wait", [](const P2PWork& w, double timeout_ms) {
        nb::gil_scoped_release release;
        w.wait(timeout_ms);
      }, nb::arg("timeout_ms") = 0.0)
      .def_prop_ro("devices", [](const P2PWork& w) { return w.devices; });
  // steps: a list of steps, each a list of (dst, [srcs], scale) tuples.
  m.def("run_p2p_schedule", [](nb::list steps, const std::vector<int>& devices, int op, double scale) {
    std::vector<std::vector<Transfer>> plan;
    plan.reserve(nb::len(steps));
    for (nb::handle step : steps) {
      std::vector<Transfer>& ts = plan.emplace_back();
      for (nb::handle tr : step) {
        nb::tuple t = nb::cast<nb::tuple>(tr);
        ts.push_back({nb::cast<Tensor>(t[0]), nb::cast<std::vector<Tensor>>(t[1]), nb::cast<bool>(t[2])});
      }
    }
    VT_CHECK_VALUE(op >= 0 && op <= 3, "p2p collective: unknown reduction op ", op);
    return run_p2p_schedule(plan, devices, RedOp(op), scale);
  });
  m.def("inject_stall", &inject_stall);
  m.def("collective_devices", &collective_devices, nb::arg("ins"), nb::arg("outputs").none(), nb::arg("num"),
        nb::arg("den"));
  // steps: a list of steps, each a list of ((rank, buffer, chunk), [(rank, buffer, chunk), ...], scale).
  nb::class_<P2PPlan>(m, "P2PPlan")
      .def("__init__", [](P2PPlan* self, nb::list steps, int nchunks, bool needs_tmp) {
        auto ref = [](nb::handle h) {
          nb::tuple t = nb::cast<nb::tuple>(h);
          return PlanRef{nb::cast<int>(t[0]), nb::cast<int>(t[1]), nb::cast<int>(t[2])};
        };
        std::vector<std::vector<PlanTransfer>> plan;
        for (nb::handle step : steps) {
          auto& ts = plan.emplace_back();
          for (nb::handle tr : step) {
            nb::tuple t = nb::cast<nb::tuple>(tr);
            PlanTransfer x{ref(t[0]), {}, nb::cast<bool>(t[2])};
            for (nb::handle s : nb::cast<nb::list>(t[1])) x.srcs.push_back(ref(s));
            ts.push_back(std::move(x));
          }
        }
        new (self) P2PPlan(std::move(plan), nchunks, needs_tmp);
      })
      .def("run", [](const P2PPlan& p, const std::vector<Tensor>& ins, const std::vector<Tensor>& outs,
                     const std::vector<int>& devices, int op, double scale) {
        VT_CHECK_VALUE(op >= 0 && op <= 3, "p2p collective: unknown reduction op ", op);
        return p.run(ins, outs, devices, RedOp(op), scale);
      })
      .def("count_traffic", &P2PPlan::count_traffic);
}

}  // namespace vt::py
