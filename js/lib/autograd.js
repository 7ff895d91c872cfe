// Autograd from JavaScript: backward and grad (promises on the pool, as barrier jobs, or synchronous), and
// grad mode. Grad mode belongs to the JS thread; queued calls carry the mode in force when they were made.
import { native } from './native.js';
import { scheduler } from './scheduler.js';

const list = (x) => (x === undefined || x === null ? [] : Array.isArray(x) ? x : [x]);

// backward(tensors, gradTensors?, {retainGraph, createGraph, inputs}): accumulates into leaves' .grad.
export function backward(tensors, gradTensors, opts = {}) {
  return scheduler.submit(() => native.backwardAsync(list(tensors), list(gradTensors), opts));
}
export function backwardSync(tensors, gradTensors, opts = {}) {
  native.backward(list(tensors), list(gradTensors), opts);
}
// grad(outputs, inputs, gradOutputs?, {retainGraph, createGraph, allowUnused}): an array, one per input.
export function grad(outputs, inputs, gradOutputs, opts = {}) {
  return scheduler.submit(() => native.gradAsync(list(outputs), list(inputs), list(gradOutputs), opts));
}
export function gradSync(outputs, inputs, gradOutputs, opts = {}) {
  return native.grad(list(outputs), list(inputs), list(gradOutputs), opts);
}

export const isGradEnabled = () => native.isGradEnabled();
export const setGradEnabled = (on) => native.setGradEnabled(Boolean(on));

// Runs fn with grad mode set to `enabled`, restoring the previous mode afterwards. When fn returns a promise the
// mode stays set until it settles: every call made meanwhile on this thread, including calls of unrelated
// code interleaved at its awaits, runs under that mode (grad mode is per thread, not per async context).
function withGradMode(enabled, fn) {
  const prev = native.isGradEnabled();
  native.setGradEnabled(enabled);
  let r;
  try {
    r = fn();
  } catch (e) {
    native.setGradEnabled(prev);
    throw e;
  }
  if (r && typeof r.then === 'function') {
    return r.finally(() => native.setGradEnabled(prev));
  }
  native.setGradEnabled(prev);
  return r;
}
export const noGrad = (fn) => withGradMode(false, fn);
export const enableGrad = (fn) => withGradMode(true, fn);
