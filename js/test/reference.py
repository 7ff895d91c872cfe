"""Reference results for the Node.js tests, computed by vibetensor from Python on the same inputs.

Reads a JSON list of cases on stdin and writes one JSON result per case to stdout. A case is either
  {"op": "vt::add", "args": [...], "kwargs": {...}}            one dispatcher op (vt.ops.<ns>.<name>)
  {"program": {"inputs": [...], "steps": [...], "grad": true}}  a chain of ops, then backward (autograd)
  {"load": "/path/plugin.so"}                                    loads a plugin first (later cases may use it)
Values are tagged the same way in both languages (test/helpers.mjs):
  {"t": {"data": [...], "shape": [...], "dtype": "float32", "requires_grad": false}}  a tensor
  {"i": 3} an int, {"f": 2.5} a float, {"ref": k} step k's result (programs), {"list": [...]} a list of values;
  bools, strings (dtype and device names too), null and lists of ints as themselves.
Results: tensors as {"shape", "dtype", "data"} (non-finite floats as "nan"/"inf"/"-inf"), lists for tuples,
{"error": kind, "message": text} when the call raised.
"""
import json
import math
import sys

import vibetensor.torch as vt


def decode(v, refs):
    if isinstance(v, dict):
        if "t" in v:
            t = v["t"]
            x = vt.tensor(t["data"], dtype=getattr(vt, t["dtype"])).reshape(t["shape"])
            if t.get("requires_grad"):
                x.requires_grad_(True)
            return x
        if "i" in v:
            return int(v["i"])
        if "f" in v:
            return float(v["f"])
        if "ref" in v:
            return refs[v["ref"]]
        if "list" in v:
            return [decode(x, refs) for x in v["list"]]
    if isinstance(v, list):
        return [decode(x, refs) for x in v]
    return v


def num(x):
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def encode(r):
    if r is None:
        return None
    if isinstance(r, (tuple, list)):
        return [encode(x) for x in r]
    if isinstance(r, vt.Tensor):
        flat = r.detach().reshape(-1)
        if r.dtype in (vt.float16, vt.bfloat16):
            flat = flat.to(vt.float32)
        data = [num(x) for x in flat.tolist()]
        return {"shape": list(r.shape), "dtype": str(r.dtype).replace("vt.", ""), "data": data}
    return num(r)


def op(name):
    ns, short = name.split("::")
    return getattr(getattr(vt.ops, ns), short)


def run(case):
    try:
        if "load" in case:
            return {"ops": sorted(vt.ops.load_library(case["load"])["ops"])}
        if "program" in case:
            p = case["program"]
            refs = [decode(x, []) for x in p["inputs"]]
            for step in p["steps"]:
                refs.append(op(step["op"])(*[decode(a, refs) for a in step["args"]],
                                           **{k: decode(v, refs) for k, v in step.get("kwargs", {}).items()}))
            out = refs[-1]
            if p.get("grad"):
                out.backward()
                return [encode(x.grad) for x in refs[: len(p["inputs"])]]
            return encode(out)
        args = [decode(a, []) for a in case.get("args", [])]
        kwargs = {k: decode(v, []) for k, v in case.get("kwargs", {}).items()}
        return encode(op(case["op"])(*args, **kwargs))
    except Exception as e:  # the test compares the kind and message with the JS error
        return {"error": type(e).__name__, "message": str(e)}


if __name__ == "__main__":
    json.dump([run(c) for c in json.load(sys.stdin)], sys.stdout)
