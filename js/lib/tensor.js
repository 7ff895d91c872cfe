// Tensors from JavaScript: factories, conversions to and from JS arrays and typed arrays, host/device copies,
// basic indexing, and the Tensor methods. The class itself is in handle.js; the methods added here are
// synchronous, as Python's are: t.add(u) is ops.vt.add.sync(t, u). Every op whose first argument is `self`
// becomes a method, from the schemas, unless the class already has that name.
import { Tensor } from './handle.js';
import { native } from './native.js';
import { ops, refreshOps } from './ops.js';

export { Tensor };
const vt = () => ops.vt;

const ARRAY_DTYPE = new Map([
  [Float32Array, 'float32'], [Float64Array, 'float64'], [Int32Array, 'int32'], [Int16Array, 'int16'],
  [Int8Array, 'int8'], [Uint8Array, 'uint8'], [BigInt64Array, 'int64'],
]);
const DTYPE_ARRAY = {
  float32: Float32Array, float64: Float64Array, int32: Int32Array, int16: Int16Array, int8: Int8Array,
  uint8: Uint8Array, bool: Uint8Array, int64: BigInt64Array,
};

// A number that stays floating in type promotion (JS has no separate int and float types).
export class FloatScalar {
  constructor(v) {
    this.__vtFloat = Number(v);
  }
}
export const scalar = { float: (v) => new FloatScalar(v) };

function checkShape(shape, fn) {
  if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
    throw new TypeError(`${fn}(): shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape;
}

// fromTypedArray(array, shape?, {dtype, copy}): a CPU tensor over the array's memory (copy: false, the
// default) or over a copy. dtype defaults to the array's element type; shape to [array.length].
export function fromTypedArray(array, shape, { dtype, copy = false } = {}) {
  const dt = dtype ?? ARRAY_DTYPE.get(array.constructor);
  if (!dt) throw new TypeError(`fromTypedArray(): give a dtype for a ${array.constructor.name}`);
  return native.fromTypedArray(array, shape ?? [array.length], dt, copy);
}

function inferShape(data) {
  const shape = [];
  let x = data;
  while (Array.isArray(x)) {
    shape.push(x.length);
    x = x[0];
  }
  return shape;
}

function flatten(data, shape, out, depth = 0) {
  if (depth === shape.length) {
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new RangeError(`tensor(): ragged nested array: expected length ${shape[depth]} at depth ${depth}`);
  }
  for (const x of data) flatten(x, shape, out, depth + 1);
}

// tensor(data, {dtype, device, requiresGrad}): a new tensor holding a copy of `data` (a number, a nested array,
// or a typed array). As in torch, integers only make int64, booleans bool, anything else float32.
export function tensor(data, { dtype, device, requiresGrad = false } = {}) {
  let t;
  if (ArrayBuffer.isView(data)) {
    t = fromTypedArray(data, [data.length], { copy: true });
    if (dtype && dtype !== t.dtype) t = vt().to_dtype.sync(t, dtype);
  } else {
    const shape = inferShape(data);
    const flat = [];
    flatten(data, shape, flat);
    const dt = dtype ?? (flat.every((v) => typeof v === 'boolean') && flat.length ? 'bool'
      : flat.every((v) => Number.isInteger(v) || typeof v === 'bigint') && flat.length ? 'int64' : 'float32');
    const Arr = DTYPE_ARRAY[dt];
    if (Arr) {
      const a = dt === 'int64' ? BigInt64Array.from(flat, (v) => BigInt(v)) : Arr.from(flat, Number);
      t = native.fromTypedArray(a, shape, dt, false);
    } else {  // float16 / bfloat16: made in float64, then cast by the core
      t = vt().to_dtype.sync(native.fromTypedArray(Float64Array.from(flat, Number), shape, 'float64', false), dt);
    }
  }
  if (device && device !== 'cpu') t = t.to(device);
  if (requiresGrad) t.requiresGrad = true;
  return t;
}

function factory(fill) {
  return (shape, { dtype = 'float32', device, requiresGrad = false } = {}) => {
    checkShape(shape, fill === null ? 'empty' : 'full');
    const t = fill === null ? vt().empty.sync(shape, { dtype, device })
      : vt().full.sync(shape, fill, { dtype, device });
    if (requiresGrad) t.requiresGrad = true;
    return t;
  };
}
export const empty = factory(null);
export const zeros = factory(0);
export const ones = factory(1);
export function full(shape, value, { dtype, device, requiresGrad = false } = {}) {
  const t = vt().full.sync(checkShape(shape, 'full'), value, { dtype, device });
  if (requiresGrad) t.requiresGrad = true;
  return t;
}
export function arange(start, end, step = 1, opts = {}) {
  if (end === undefined) [start, end] = [0, start];
  return vt().arange.sync(start, end, step, opts);
}
// rand / randn: uniform on [0, 1) and standard normal, from the core's generator (manualSeed).
export function rand(shape, { dtype = 'float32', device, requiresGrad = false } = {}) {
  const t = vt().uniform_.sync(empty(shape, { dtype, device }), 0, 1);
  if (requiresGrad) t.requiresGrad = true;
  return t;
}
export function randn(shape, { dtype = 'float32', device, requiresGrad = false } = {}) {
  const t = vt().normal_.sync(empty(shape, { dtype, device }), 0, 1);
  if (requiresGrad) t.requiresGrad = true;
  return t;
}

function nest(flat, shape, d = 0, off = { i: 0 }) {
  if (d === shape.length) return flat[off.i++];
  const out = new Array(shape[d]);
  for (let k = 0; k < shape[d]; ++k) out[k] = nest(flat, shape, d + 1, off);
  return out;
}

const P = Tensor.prototype;
const methods = {
  // Nested JS arrays of numbers (booleans for bool; int64 as numbers, exact up to 2^53).
  toArray() {
    let t = this;
    if (t.dtype === 'float16' || t.dtype === 'bfloat16') t = vt().to_dtype.sync(t, 'float32');
    const ta = t.toTypedArray();
    let flat = Array.from(ta, (v) => (typeof v === 'bigint' ? Number(v) : v));
    if (this.dtype === 'bool') flat = flat.map((v) => v !== 0);
    return nest(flat, this.shape);
  },
  // to(device | dtype, {nonBlocking}): a copy on another device or in another dtype (this tensor when nothing
  // changes, as in torch).
  to(target, { nonBlocking = false } = {}) {
    if (target === this.device) return this;
    if (target === 'cpu' || String(target).startsWith('cuda')) {
      const out = empty(this.shape, { dtype: this.dtype, device: target });
      return vt().copy_.sync(out, this, nonBlocking);
    }
    return target === this.dtype ? this : vt().to_dtype.sync(this, target);
  },
  cuda(device = 'cuda') { return this.to(device); },
  cpu() { return this.to('cpu'); },
  size(d) { return d === undefined ? this.shape : this.shape.at(d); },
  dim() { return this.ndim; },
  backward(gradient, opts = {}) { native.backward([this], gradient ? [gradient] : [], opts); },
  // Arguments after self go straight on (no rest parameters: this is the hot path of small ops).
  requiresGrad_(flag = true) { this.requiresGrad = flag; return this; },
  // at(...specs): basic indexing. A number selects (dropping the dim), [start, end, step] slices (missing or
  // null ends are open), null keeps a dim whole. Negative numbers count from the end. Returns a view.
  at(...specs) {
    let t = this;
    let dim = 0;
    for (const s of specs) {
      if (typeof s === 'number') t = vt().select.sync(t, dim, s);
      else if (s === null) dim++;
      else if (Array.isArray(s)) {
        const [start = null, end = null, step = 1] = s;
        t = vt().slice.sync(t, dim, start, end, step);
        dim++;
      } else throw new TypeError(`at(): an index is a number, [start, end, step] or null, got ${typeof s}`);
    }
    return t;
  },
  toString() {
    if (this.disposed) return 'Tensor(<disposed>)';
    const body = this.numel() <= 64 ? JSON.stringify(this.toArray()) : `[...${this.numel()} elements]`;
    return `Tensor(${body}, shape=[${this.shape}], dtype=${this.dtype}, device=${this.device})`;
  },
  [Symbol.for('nodejs.util.inspect.custom')]() { return this.toString(); },
};
for (const [k, f] of Object.entries(methods)) Object.defineProperty(P, k, { value: f, writable: true, configurable: true });

// Every vt:: op whose first argument is `self` becomes a synchronous method; run again after new ops appear.
export function attachMethods() {
  refreshOps();
  for (const [name, op] of Object.entries(ops.vt)) {
    const a0 = op.info.args[0];
    if (!a0 || a0.name !== 'self' || a0.type !== 'Tensor' || name in P) continue;
    Object.defineProperty(P, name, { value: op.method, writable: true, configurable: true });
  }
}
attachMethods();
