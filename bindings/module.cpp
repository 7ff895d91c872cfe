// vibetensor._C: the one private extension. Each layer binds itself into a submodule from its own bindings/
// folder; this file wires them up and maps C++ error kinds onto the Python exceptions torch raises for the
// same mistakes.
#include <typeinfo>

#include "common.h"  // core/bindings

namespace nb = nanobind;

namespace vt::py {
void bind_topology(nb::module_& m);  // topology/bindings/topology.cpp
void bind_autograd(nb::module_& m);  // core/bindings/autograd.cpp
void bind_fabric(nb::module_& m);    // fabric/bindings/fabric.cpp
}

NB_MODULE(_C, m) {
  // Functions attached to the Tensor class and held by Python modules are still alive when the interpreter
  // tears the extension down; that is not a leak worth a warning at every exit.
  nb::set_leak_warnings(false);
  // torch.OutOfMemoryError's counterpart: a RuntimeError (as torch's) that is also a MemoryError.
  static PyObject* oom_error = PyErr_NewException("vibetensor.OutOfMemoryError",
                                                  nb::make_tuple(nb::handle(PyExc_RuntimeError),
                                                                 nb::handle(PyExc_MemoryError)).release().ptr(),
                                                  nullptr);
  m.attr("OutOfMemoryError") = nb::handle(oom_error);
  // A bounded wait that expired (vibetensor.fabric.FabricTimeoutError): a RuntimeError and a TimeoutError.
  static PyObject* timeout_error = PyErr_NewException("vibetensor.fabric.FabricTimeoutError",
                                                      nb::make_tuple(nb::handle(PyExc_RuntimeError),
                                                                     nb::handle(PyExc_TimeoutError)).release().ptr(),
                                                      nullptr);
  m.attr("FabricTimeoutError") = nb::handle(timeout_error);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const vt::Error& e) {
      PyObject* type = PyExc_RuntimeError;
      switch (e.kind()) {
        case vt::ErrorKind::Index: type = PyExc_IndexError; break;
        case vt::ErrorKind::Type: type = PyExc_TypeError; break;
        case vt::ErrorKind::Value: type = PyExc_ValueError; break;
        case vt::ErrorKind::NotImplemented: type = PyExc_NotImplementedError; break;
        case vt::ErrorKind::OutOfMemory: type = oom_error; break;
        case vt::ErrorKind::Timeout: type = timeout_error; break;
        default: break;
      }
      PyErr_SetString(type, e.what());
    } catch (const std::bad_cast& e) {
      // A Python value that a binding could not convert (nb::cast_error derives from std::bad_cast): the caller
      // passed an argument of the wrong type or range. Bindings check their arguments with a message of their
      // own; this is the fallback, so that no "std::bad_cast" ever reaches a user.
      PyErr_SetString(PyExc_TypeError, "an argument has the wrong type or is out of range for this function");
    }
  });
  nb::module_ core = m.def_submodule("core", "tensor runtime: tensors, dtypes, dispatcher, DLPack");
  vt::py::bind_types(core);
  vt::py::bind_tensor(core);
  vt::py::bind_tensor_data(core);
  vt::py::bind_ops(core);
  vt::py::bind_dlpack(core);
  vt::py::bind_plugins(core);
  nb::module_ prof = m.def_submodule("profiler", "op ranges for vibetensor.torch.profiler");
  vt::py::bind_profiler(prof);
  nb::module_ io = m.def_submodule("io", "safetensors files");
  vt::py::bind_safetensors(io);
  nb::module_ autograd = m.def_submodule("autograd", "grad mode, backward engine, graph nodes, custom Functions");
  vt::py::bind_autograd(autograd);
  nb::module_ cuda = m.def_submodule("cuda", "CUDA device discovery");
  vt::py::bind_cuda(cuda);
  vt::py::bind_allocator(cuda);
  vt::py::bind_streams(cuda);
  vt::py::bind_graphs(cuda);
  nb::module_ topo = m.def_submodule("topology", "CUDA-side topology probe and measurements");
  vt::py::bind_topology(topo);
  nb::module_ fabric = m.def_submodule("fabric", "routes, cross-device calls, counters, event ring, P2P collectives");
  vt::py::bind_fabric(fabric);
}
