// vibetensor for Node.js: the public API. See README.md ("Node.js") and index.d.ts.
import { native } from './native.js';
import { scheduler } from './scheduler.js';
import { ops, refreshOps } from './ops.js';
import { attachMethods } from './tensor.js';

export * from './errors.js';
export {
  Tensor, tensor, fromTypedArray, empty, zeros, ones, full, arange, rand, randn, scalar, FloatScalar,
} from './tensor.js';
export { ops, refreshOps } from './ops.js';
export * as autograd from './autograd.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './autograd.js';
export * as cuda from './cuda.js';

export const manualSeed = (seed) => native.manualSeed(seed);

// memoryStats('cpu') (the default): live CPU storages; memoryStats('cuda:N'): the device allocator's statistics.
export function memoryStats(device = 'cpu') {
  if (device === 'cpu') return native.cpuMemoryStats();
  const d = String(device).split(':');
  return native.cuda.memoryStats(d[1] === undefined ? undefined : Number(d[1]));
}

// loadLibrary(path): loads a native plugin (vt_plugin.h ABI); its ops appear in `ops` and as Tensor methods.
export function loadLibrary(path) {
  const names = native.loadLibrary(path);
  attachMethods();
  return names;
}

// The worker pool and the in-flight cap (src/pool.h, lib/scheduler.js).
export const runtime = {
  get threads() { return native.poolThreads; },
  get inFlight() { return scheduler.inFlight; },
  get waiting() { return scheduler.waiting; },
  get maxInFlight() { return scheduler.cap; },
  setMaxInFlight(n) { scheduler.setCap(n); },
};

// Fabric counters and the event ring (filled by cross-device work of an open Fabric).
export const fabric = {
  stats: (compute, remote) => (compute === undefined ? native.fabricStats() : native.fabricStats(compute, remote)),
  events: () => native.fabricEvents(),
  resetStats: () => native.fabricResetStats(),
  // Records one cross-device op as the Fabric's call path does (tests drive the counters without GPUs).
  _count: (compute, remote, bytes, route, reason = '') => native._fabricCount(compute, remote, bytes, route, reason),
};
