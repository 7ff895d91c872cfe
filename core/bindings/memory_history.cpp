// Allocator statistics, snapshots and allocation history in torch's dictionary format, and the recorder that
// gives the allocator (which knows nothing of Python) the Python stack of an allocation (Note [Allocation
// history]). The recorder runs outside the allocator's lock and takes the GIL itself.
#include "memory_history.h"

#include <nanobind/stl/string.h>

#include <unordered_map>

namespace vt::py {
namespace {

using namespace vt::cuda;

constexpr size_t kMaxFrames = 256;  // deeper stacks keep their innermost frames

bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

std::string utf8(PyObject* s) {
  const char* c = s ? PyUnicode_AsUTF8(s) : nullptr;
  if (!c) {
    PyErr_Clear();
    return "";
  }
  return c;
}

// One Python list per context, shared by every block and entry that names it (pickle stores it once).
class FrameLists {
 public:
  nb::list get(const ContextPtr& ctx) {
    if (!ctx) return nb::list();
    auto it = cache_.find(ctx.get());
    if (it != cache_.end()) return it->second;
    nb::list frames;
    for (const Frame& f : ctx->frames) {
      nb::dict d;
      d["filename"] = f.filename;
      d["line"] = f.line;
      d["name"] = f.name;
      frames.append(d);
    }
    cache_.emplace(ctx.get(), frames);
    return frames;
  }

 private:
  std::unordered_map<const Context*, nb::list> cache_;
};

template <typename T>
T parse_mode(nb::handle h, const char* arg, std::initializer_list<std::pair<const char*, T>> names, T none) {
  if (h.is_none()) return none;
  std::string s = nb::cast<std::string>(nb::str(h));
  for (auto& [n, v] : names)
    if (s == n) return v;
  std::string known = "None";
  for (auto& [n, v] : names) known += std::string(", \"") + n + "\"";
  VT_FAIL_KIND(Value, "_record_memory_history: ", arg, " must be one of ", known, "; got '", s, "'");
}

}  // namespace

ContextPtr python_context() {
  if (!Py_IsInitialized() || finalizing()) return nullptr;
  if (!PyGILState_GetThisThreadState()) return nullptr;  // a thread Python never ran on has no Python frames
  PyGILState_STATE gil = PyGILState_Ensure();
  auto ctx = std::make_shared<Context>();
  PyFrameObject* f = PyThreadState_GetFrame(PyThreadState_Get());  // new reference, or null
  while (f && ctx->frames.size() < kMaxFrames) {
    PyCodeObject* code = PyFrame_GetCode(f);  // new reference
    ctx->frames.push_back({utf8(code->co_filename), utf8(code->co_name), PyFrame_GetLineNumber(f)});
    Py_DECREF(code);
    PyFrameObject* back = PyFrame_GetBack(f);  // new reference, or null
    Py_DECREF(f);
    f = back;
  }
  Py_XDECREF(f);
  PyGILState_Release(gil);
  return ctx;
}

HistoryConfig history_config(nb::handle enabled, nb::handle context, const std::string& stacks, size_t max_entries,
                             bool clear, ContextRecorder recorder) {
  HistoryConfig c;
  if (nb::isinstance<nb::bool_>(enabled)) c.enabled = nb::cast<bool>(enabled) ? HistoryMode::All : HistoryMode::Off;
  else c.enabled = parse_mode<HistoryMode>(enabled, "enabled", {{"state", HistoryMode::State}, {"all", HistoryMode::All}},
                                          HistoryMode::Off);
  c.context = parse_mode<ContextMode>(context, "context", {{"state", ContextMode::State}, {"alloc", ContextMode::Alloc},
                                                          {"all", ContextMode::All}}, ContextMode::None);
  VT_CHECK_VALUE(stacks == "python" || stacks == "all", "_record_memory_history: stacks must be \"python\" or ",
                 "\"all\"; got '", stacks, "'");
  VT_CHECK_VALUE(max_entries > 0, "_record_memory_history: max_entries must be positive, got ", max_entries);
  c.max_entries = max_entries;
  c.clear = clear;
  if (c.context != ContextMode::None) c.recorder = std::move(recorder);
  return c;
}

void stat_entries(nb::dict& d, const std::string& name, const Stat& st) {
  d[(name + ".current").c_str()] = st.current;
  d[(name + ".peak").c_str()] = st.peak;
  d[(name + ".allocated").c_str()] = st.allocated;
  d[(name + ".freed").c_str()] = st.freed;
}

nb::dict stats_dict(const Stats& s) {
  nb::dict d;
  for (const auto& [key, value] : stats_entries(s)) d[key.c_str()] = value;
  return d;
}

nb::list snapshot_list(const std::vector<SegmentInfo>& segs, int device) {
  FrameLists frames;
  nb::list out;
  for (const SegmentInfo& s : segs) {
    nb::dict d;
    d["device"] = device;
    d["address"] = s.address;
    d["total_size"] = s.total_size;
    d["allocated_size"] = s.allocated_size;
    d["active_size"] = s.active_size;
    d["requested_size"] = s.requested_size;
    d["stream"] = s.stream;
    d["segment_type"] = s.segment_type;
    d["segment_pool_id"] = nb::make_tuple(s.pool_id.first, s.pool_id.second);  // (0, 0): the shared pools
    d["is_expandable"] = false;
    d["frames"] = frames.get(s.context);
    nb::list blocks;
    for (const BlockInfo& b : s.blocks) {
      nb::dict bd;
      bd["address"] = b.address;
      bd["size"] = b.size;
      bd["requested_size"] = b.requested;
      bd["state"] = b.state;
      bd["frames"] = frames.get(b.context);
      blocks.append(bd);
    }
    d["blocks"] = blocks;
    out.append(d);
  }
  return out;
}

nb::list trace_list(const std::vector<TraceEntry>& trace) {
  FrameLists frames;
  nb::list out;
  for (const TraceEntry& e : trace) {
    nb::dict d;
    d["action"] = trace_action_name(e.action);
    d["addr"] = e.addr;
    d["size"] = e.size;
    d["stream"] = e.stream;
    d["time_us"] = e.time_us;
    d["pool_id"] = nb::make_tuple(e.pool.first, e.pool.second);
    d["frames"] = frames.get(e.context);
    if (e.action == TraceAction::Oom) d["device_free"] = e.device_free;
    out.append(d);
  }
  return out;
}

}  // namespace vt::py
