// vibetensor._C.profiler: the op profiler's recorder (vt/core/profiler.h), read by vibetensor.torch.profiler.
#include "vt/core/profiler.h"

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "common.h"

namespace nb = nanobind;

namespace vt::py {

void bind_profiler(nb::module_& m) {
  m.def("start", &profiler::start, nb::arg("record_shapes") = false,
        "Starts recording op ranges on every thread (raises if already recording).");
  m.def("stop", [] {
    // Each range as (name, start_ns, end_ns, thread, depth, shapes), for the Python side to aggregate.
    nb::list out;
    for (profiler::Event& e : profiler::stop())
      out.append(nb::make_tuple(e.name, e.start_ns, e.end_ns, e.thread, e.depth, nb::cast(e.shapes)));
    return out;
  }, "Stops recording; the ranges closed meanwhile as (name, start_ns, end_ns, thread, depth, shapes) tuples.");
  m.def("is_active", &profiler::active);
  m.def("push_range", [](const std::string& name) { profiler::push_range(name); }, nb::arg("name"));
  m.def("pop_range", &profiler::pop_range);
}

}  // namespace vt::py
