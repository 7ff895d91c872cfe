// The `ops` namespace, generated from the dispatcher's schemas: ops.<ns>.<name> for every registered op
// ("vt::add" is ops.vt.add). Nothing here is written per op, so ops defined later (plugins through
// loadLibrary, then refreshOps) appear the same way.
//
// Each op is three calls over one schema:
//   op(...args, kwargs?)       a promise; runs on the worker pool, waits for a slot past the in-flight cap
//   op.try(...args, kwargs?)   the same, but rejects with InFlightLimitError past the cap instead of waiting
//   op.sync(...args, kwargs?)  runs now on the JS thread and returns the result
// Arguments follow the schema in order; keyword arguments (and those after `*`) go in a trailing plain object:
// ops.vt.add(a, b, { alpha: 2 }). Results: a Tensor, an array for several, undefined for "-> ()".
import { HANDLE, Tensor, wrap } from './handle.js';
import { native } from './native.js';
import { scheduler } from './scheduler.js';

// A trailing plain object holds keyword arguments; Tensors, arrays and vt.scalar.float(...) are values.
function isKwargs(x) {
  return x !== null && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype;
}

function split(args) {
  const n = args.length;
  if (n > 0 && isKwargs(args[n - 1])) return [Array.prototype.slice.call(args, 0, n - 1), args[n - 1]];
  return [Array.prototype.slice.call(args), undefined];
}

// Turns the handles of a boxed call's results into Tensors, from the schema's return types.
function resultWrapper(returns) {
  const one = (type) => (type === 'Tensor' ? wrap : type === 'Tensor[]' ? (hs) => hs.map(wrap) : null);
  if (returns.length === 0) return null;
  if (returns.length === 1) return one(returns[0]);
  const each = returns.map(one);
  return (rs) => rs.map((r, i) => (each[i] ? each[i](r) : r));
}

// In-place ops ("add_", returning their first argument) hand back the very object they were called on, as
// Python's do (x.add_(1) is x); the handle of the result is released at once.
function isInplace(info) {
  return info.name.endsWith('_') && info.returns.length === 1 && info.returns[0] === 'Tensor' &&
    info.args.length > 0 && info.args[0].type === 'Tensor';
}

// Note [Keywords placed in JS]
// A synchronous boxed call hands the addon one array in schema order: the positional values, then each keyword
// value at its argument's place, holes (undefined) where nothing was given. Placing keywords here costs a Map
// lookup each; reading them from the native side cost the object's key list and a string per key, a sixth of
// a small op's call. A call the placement cannot take as it is (too many positional values, an unknown keyword,
// one given twice) goes the general way, native.call, whose errors match Python's. An undefined value given
// is None, as everywhere, so it is passed as null: only holes mean "not given".
function placer(info) {
  const where = new Map(info.args.map((a, i) => [a.name, i]));
  const nargs = info.args.length;
  const npos = info.args.filter((a) => !a.kwargOnly).length;
  return (args) => {
    let n = args.length;
    let kw;
    if (n > 0 && isKwargs(args[n - 1])) kw = args[--n];
    if (n > npos) return null;
    const out = new Array(nargs);
    for (let i = 0; i < n; ++i) out[i] = args[i] === undefined ? null : args[i];
    if (kw !== undefined) {
      for (const k in kw) {
        const i = where.get(k);
        if (i === undefined || i < n || !Object.prototype.hasOwnProperty.call(kw, k)) return null;
        out[i] = kw[k] === undefined ? null : kw[k];
      }
    }
    return out;
  };
}

export function makeOp(info) {
  const idx = info.index;
  const place = placer(info);
  const wrapOne = resultWrapper(info.returns) ?? ((r) => r);
  const inplace = isInplace(info);
  const conv = inplace
    ? (r, self) => {
      if (!(self instanceof Tensor) || r === null) return wrapOne(r);
      native.tensor.release(r);
      return self;
    }
    : wrapOne;
  const call = (pos, kw) => conv(native.call(idx, pos, kw), pos[0]);
  const callSync = (args) => {
    const ordered = place(args);
    if (ordered === null) {
      const [pos, kw] = split(args);
      return call(pos, kw);
    }
    return conv(native.callInOrder(idx, ordered), ordered[0]);
  };
  const callAsync = (pos, kw, grad) => native.callAsync(idx, pos, kw, grad).then((r) => conv(r, pos[0]));
  let sync;
  // Unary and binary tensor ops called with exactly their tensors take the addon's typed path, given the
  // handles when the arguments are Tensors (Note [Handles from JS] in src/ops.cpp).
  const fast = inplace ? conv : wrap;
  if (info.shape === 'unary') {
    sync = function (a) {
      if (arguments.length === 1) {
        return fast(a instanceof Tensor ? native.call1h(idx, a[HANDLE]) : native.call1(idx, a), a);
      }
      return callSync(arguments);
    };
  } else if (info.shape === 'binary') {
    sync = function (a, b) {
      if (arguments.length === 2) {
        return fast(a instanceof Tensor && b instanceof Tensor ? native.call2h(idx, a[HANDLE], b[HANDLE])
          : native.call2(idx, a, b), a);
      }
      return callSync(arguments);
    };
  } else {
    sync = function () {
      return callSync(arguments);
    };
  }
  // The method form (a.mul(b), attached by lib/tensor.js): the typed path with `this` as the first tensor,
  // without a call through `sync` (a frame and a type check, a fifth of a tiny op's call from JS).
  let method;
  if (info.shape === 'unary') {
    method = function () {
      return arguments.length === 0 ? fast(native.call1h(idx, this[HANDLE]), this) : sync(this, ...arguments);
    };
  } else if (info.shape === 'binary') {
    method = function (b) {
      return arguments.length === 1 && b instanceof Tensor ? fast(native.call2h(idx, this[HANDLE], b[HANDLE]), this)
        : sync(this, ...arguments);
    };
  } else {
    method = function () { return sync(this, ...arguments); };
  }
  // The grad mode is read at the call, not at submission: a call waiting past the cap keeps the mode it was
  // made under.
  const op = function () {
    const [pos, kw] = split(arguments);
    const grad = native.isGradEnabled();
    return scheduler.submit(() => callAsync(pos, kw, grad));
  };
  op.try = function () {
    const [pos, kw] = split(arguments);
    return scheduler.trySubmit(() => callAsync(pos, kw, native.isGradEnabled()));
  };
  op.sync = sync;
  op.method = method;
  op.schema = info.schema;
  op.info = info;
  Object.defineProperty(op, 'name', { value: info.name });
  return op;
}

export const ops = {};
const known = new Set();

// Adds every op the dispatcher has that `ops` lacks; returns the names added.
export function refreshOps() {
  const added = [];
  for (const name of native.opNames()) {
    if (known.has(name)) continue;
    const info = native.opInfo(name);
    const [ns, short] = name.split('::');
    (ops[ns] ??= {})[short] = makeOp(info);
    known.add(name);
    added.push(name);
  }
  return added;
}
refreshOps();
