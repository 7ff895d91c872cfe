// CUDA from JavaScript: devices, streams and events, and the caching allocator's statistics. Streams are
// {device, handle} objects (handle a BigInt cudaStream_t). Without a GPU, isAvailable() is false and calls that
// need a device raise the core's RuntimeError.
import { native } from './native.js';

const c = native.cuda;
export const isAvailable = () => c.isAvailable();
export const deviceCount = () => c.deviceCount();
export const unavailableReason = () => c.unavailableReason();
export const synchronize = (device) => c.synchronize(device);
export const memoryStats = (device) => c.memoryStats(device);
export const memorySnapshot = (device) => c.memorySnapshot(device);
export const emptyCache = () => c.emptyCache();
export const resetPeakMemoryStats = (device) => c.resetPeakMemoryStats(device);
export const currentStream = (device) => c.currentStream(device);
export const defaultStream = (device) => c.defaultStream(device);
export const poolStream = (device, priority = 0) => c.poolStream(device, priority);
export const setCurrentStream = (stream) => c.setCurrentStream(stream);
export const streamQuery = (stream) => c.streamQuery(stream);
export const streamSynchronize = (stream) => c.streamSynchronize(stream);

// new Event({device, timing}); record(stream?), query(), synchronize(), wait(stream?), elapsedTime(end).
export class Event extends c.Event {
  constructor({ device, timing = false } = {}) {
    super(device, timing);
  }
}

// Runs fn with `stream` as the current stream of its device, restoring the previous one afterwards (also when
// fn returns a promise: until it settles). Calls queued meanwhile carry the stream (src/ops.cpp).
export function withStream(stream, fn) {
  const prev = c.currentStream(stream.device);
  c.setCurrentStream(stream);
  let r;
  try {
    r = fn();
  } catch (e) {
    c.setCurrentStream(prev);
    throw e;
  }
  if (r && typeof r.then === 'function') return r.finally(() => c.setCurrentStream(prev));
  c.setCurrentStream(prev);
  return r;
}
