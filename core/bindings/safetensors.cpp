// vibetensor._C.io: the safetensors reader and writer (vt/interop/safetensors.h) for vibetensor.io. SafetensorError
// reaches Python as vibetensor.io.SafetensorError (an Exception, as the `safetensors` package's is) carrying the
// rule, the tensor (or None) and the file offset (or None) of Note [Safetensors validation]. Reads and writes
// run without the GIL.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "common.h"
#include "vt/interop/safetensors.h"

namespace vt::py {
namespace {

namespace st = vt::safetensors;

PyObject* g_error = nullptr;

struct SafeFile {
  st::OpenFile f;

  const st::Entry& entry(const std::string& name) const {
    const st::Entry* e = f.header.find(name);
    if (!e) throw st::SafetensorError("not_found", name, -1, "File does not contain tensor " + name);
    return *e;
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const st::Entry& e : f.header.tensors) out.push_back(e.name);
    return out;
  }
  std::vector<std::string> offset_keys() const {
    std::vector<const st::Entry*> order;
    for (const st::Entry& e : f.header.tensors) order.push_back(&e);
    std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return std::pair(a->begin, a->end) < std::pair(b->begin, b->end); });
    std::vector<std::string> out;
    for (const st::Entry* e : order) out.push_back(e->name);
    return out;
  }
  std::vector<Tensor> load(const std::vector<std::string>& names, Device device, const std::string& backend) const {
    VT_CHECK_VALUE(backend == "mmap" || backend == "pread", "backend must be \"mmap\" or \"pread\", got \"", backend, "\"");
    std::vector<const st::Entry*> entries;
    for (const std::string& n : names) entries.push_back(&entry(n));
    nb::gil_scoped_release release;
    return st::load_tensors(f, entries, device, backend == "mmap" ? st::Backend::Mmap : st::Backend::Pread);
  }
};

void translate(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const st::SafetensorError& e) {
    nb::object exc = nb::borrow(g_error)(nb::str(e.what()));
    exc.attr("rule") = nb::str(e.rule().c_str());
    exc.attr("tensor") = e.tensor().empty() ? nb::none() : nb::object(nb::str(e.tensor().c_str()));
    exc.attr("offset") = e.offset() < 0 ? nb::none() : nb::object(nb::int_(e.offset()));
    PyErr_SetObject(g_error, exc.ptr());
  }
}

}  // namespace

void bind_safetensors(nb::module_& m) {
  g_error = PyErr_NewExceptionWithDoc("vibetensor.io.SafetensorError",
                                      "A malformed safetensors file, or a tensor vibetensor cannot represent. "
                                      "`rule` names the broken rule, `tensor` the tensor at fault (or None), `offset` "
                                      "the byte of the file (or None).",
                                      PyExc_Exception, nullptr);
  m.attr("SafetensorError") = nb::handle(g_error);
  for (const char* a : {"rule", "tensor", "offset"}) PyObject_SetAttrString(g_error, a, Py_None);
  nb::register_exception_translator(&translate);

  nb::class_<SafeFile>(m, "SafeFile")
      .def("keys", &SafeFile::keys)
      .def("offset_keys", &SafeFile::offset_keys)
      .def("metadata", [](const SafeFile& s) { return s.f.header.metadata; })
      .def("entry", [](const SafeFile& s, const std::string& name) {
        const st::Entry& e = s.entry(name);
        return std::make_pair(std::string(e.dtype->name), e.shape);
      })
      .def("load", [](const SafeFile& s, const std::vector<std::string>& names, nb::handle device,
                      const std::string& backend) { return s.load(names, to_device(device), backend); },
           nb::arg("names"), nb::arg("device"), nb::arg("backend"));
  m.def("open_fd", [](int fd) {
    nb::gil_scoped_release release;
    return SafeFile{st::open_fd(fd)};
  });
  m.def("open_bytes", [](nb::bytes data) {
    std::string copy(data.c_str(), data.size());
    nb::gil_scoped_release release;
    return SafeFile{st::open_bytes(std::move(copy))};
  });
  using Items = std::vector<std::pair<std::string, Tensor>>;
  m.def("save_bytes", [](const Items& items, const std::optional<st::Metadata>& metadata) {
    std::string out;
    {
      nb::gil_scoped_release release;
      out = st::save_bytes(items, metadata);
    }
    return nb::bytes(out.data(), out.size());
  });
  m.def("save_file", [](const Items& items, const std::optional<st::Metadata>& metadata, const std::string& path) {
    nb::gil_scoped_release release;
    st::save_file(items, metadata, path);
  });
}

}  // namespace vt::py
