// vibetensor._C.cuda CUDA graphs (vt/cuda/graph.h): the CUDAGraph class, pool handles and the capture query.
// vibetensor/cuda/graphs.py adds torch's Python surface (the vt.cuda.graph context manager) on top.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>

#include "common.h"
#include "vt/cuda/graph.h"

namespace vt::py {

void bind_graphs(nb::module_& m) {
  using namespace vt::cuda;
  nb::class_<CUDAGraph>(m, "CUDAGraph", "A captured CUDA graph and its private memory pool (vt/cuda/graph.h).")
      .def(nb::init<>())
      .def("capture_begin", [](CUDAGraph& g, std::optional<MempoolId> pool, const std::string& mode) {
        CaptureErrorMode m = parse_capture_error_mode(mode);  // a bad mode fails before any CUDA call
        g.capture_begin(pool.value_or(kSharedPool), m);
      }, nb::arg("pool") = nb::none(), nb::arg("capture_error_mode") = "global")
      .def("capture_end", [](CUDAGraph& g) {
        nb::gil_scoped_release release;  // instantiation can take milliseconds for large graphs
        g.capture_end();
      })
      .def("replay", &CUDAGraph::replay)
      .def("reset", &CUDAGraph::reset)
      .def("pool", &CUDAGraph::pool)
      .def("debug_dump", &CUDAGraph::debug_dump, nb::arg("path"))
      .def_prop_ro("is_capturing", &CUDAGraph::is_capturing)
      .def_prop_ro("is_ready", &CUDAGraph::is_ready)
      .def_prop_ro("num_nodes", &CUDAGraph::num_nodes);
  m.def("graph_pool_handle", &graph_pool_handle);
  m.def("is_current_stream_capturing", &is_current_stream_capturing);
}

}  // namespace vt::py
