// The Tensor class: a plain JavaScript object holding a handle into the addon's table (Note [Tensor handles]
// in src/tensor_wrap.h). The garbage collector frees it through a FinalizationRegistry entry; dispose() at
// once (Note [Tensor lifetime]). The native side reads the handle under HANDLE, a private symbol.
import { native } from './native.js';

// Exported for lib/ops.js's typed paths only (Note [Handles from JS]); not part of the package's API.
export const HANDLE = Symbol('vibetensor.handle');
const t = native.tensor;
// Collected handles are released in batches, one native call for many (a call per object would cost as much
// as a small op's dispatch); a batch is flushed at 256 handles or on the next turn of the event loop.
let collected = [];
let flushing = null;
function flush() {
  flushing = null;
  const hs = collected;
  collected = [];
  t.releaseMany(hs);
}
const registry = new FinalizationRegistry((h) => {
  collected.push(h);
  if (collected.length >= 256) flush();
  else if (flushing === null) {
    flushing = setImmediate(flush);
    flushing.unref();  // never keeps the process alive
  }
});

export class Tensor {
  constructor(handle, key) {
    if (key !== HANDLE) {
      throw new TypeError("Tensor objects are made by vibetensor's factories (tensor, zeros, fromTypedArray, ...), not by new");
    }
    this[HANDLE] = handle;
  }

  get shape() { return t.shape(this); }
  get dtype() { return t.dtype(this); }
  get device() { return t.device(this); }
  get ndim() { return t.ndim(this); }
  get requiresGrad() { return t.requiresGrad(this); }
  set requiresGrad(flag) { t.setRequiresGrad(this, flag); }
  get grad() { return t.grad(this); }
  set grad(g) { t.setGrad(this, g); }
  get isLeaf() { return t.isLeaf(this); }
  /** The name of the node that made this tensor, or null for leaves. */
  get gradFn() { return t.gradFn(this); }
  get disposed() { return !t.isLive(this[HANDLE]); }
  get _version() { return t.version(this); }
  get _storageId() { return t.storageId(this); }
  numel() { return t.numel(this); }
  stride() { return t.stride(this); }
  storageOffset() { return t.storageOffset(this); }
  isContiguous() { return t.isContiguous(this); }
  toTypedArray() { return t.toTypedArray(this); }
  asTypedArray() { return t.asTypedArray(this); }
  item() { return t.item(this); }
  detach() { return t.detach(this); }
  // Drops this object's reference now; any later use throws a TypeError.
  dispose() { t.release(this[HANDLE]); }
}

// A new Tensor over a handle (null stays null).
export function wrap(h) {
  if (h === null) return null;
  const x = new Tensor(h, HANDLE);
  registry.register(x, h);
  return x;
}

t.setup(HANDLE, wrap);
