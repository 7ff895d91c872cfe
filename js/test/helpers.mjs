// Shared test helpers: the tagged value format of reference.py (inputs described once, decoded by both
// languages), the Python reference runner, and result comparison.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

import * as vt from '../lib/index.js';

export { vt };
const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');

// ---- tagged values ----
export const T = (data, shape, dtype = 'float32', requiresGrad = false) =>
  ({ t: { data, shape, dtype, requires_grad: requiresGrad } });
export const I = (i) => ({ i });
export const F = (f) => ({ f });
export const ref = (k) => ({ ref: k });
export const L = (...xs) => ({ list: xs });

export function decode(v, refs = []) {
  if (Array.isArray(v)) return v.map((x) => decode(x, refs));
  if (v === null || typeof v !== 'object') return v;
  if ('t' in v) {
    const { data, shape, dtype, requires_grad: rg } = v.t;
    const t = vt.tensor(data.length ? data : [], { dtype }).reshape(shape);
    if (rg) t.requiresGrad = true;
    return t;
  }
  if ('i' in v) return v.i;
  if ('f' in v) return vt.scalar.float(v.f);
  if ('ref' in v) return refs[v.ref];
  if ('list' in v) return v.list.map((x) => decode(x, refs));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decode(x, refs)]));  // keyword arguments
}

const num = (x) => (Number.isNaN(x) ? 'nan' : x === Infinity ? 'inf' : x === -Infinity ? '-inf' : x);
export function encode(r) {
  if (r === undefined || r === null) return null;
  if (Array.isArray(r)) return r.map(encode);
  if (r instanceof vt.Tensor) {
    const flat = r.reshape([-1]).toArray();
    return { shape: r.shape, dtype: r.dtype, data: flat.map((x) => (typeof x === 'boolean' ? x : num(x))) };
  }
  return num(r);
}

// ---- the Python side ----
function pythonEnv() {
  const env = { ...process.env };
  // A developer build puts the extension next to the sources in python/; an installed package needs nothing.
  const dev = join(repoRoot, 'python', 'vibetensor');
  if (existsSync(dev) && readdirSync(dev).some((f) => f.startsWith('_C') && f.endsWith('.so'))) {
    env.PYTHONPATH = [join(repoRoot, 'python'), env.PYTHONPATH].filter(Boolean).join(':');
  }
  return env;
}

export function pythonReference(cases) {
  const r = spawnSync(process.env.VT_PYTHON || 'python3', [join(here, 'reference.py')], {
    input: JSON.stringify(cases), env: pythonEnv(), maxBuffer: 1 << 28, encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`reference.py failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

// ---- comparison ----
function close(a, b, rtol, atol) {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (typeof a === 'boolean' || typeof b === 'boolean') return Boolean(a) === Boolean(b);
  return Math.abs(a - b) <= atol + rtol * Math.abs(b);
}
export function assertSame(actual, expected, what, { rtol = 1e-6, atol = 1e-7 } = {}) {
  if (expected && typeof expected === 'object' && 'error' in expected) {
    assert.fail(`${what}: Python raised ${expected.error}: ${expected.message}, JS returned ${JSON.stringify(actual).slice(0, 200)}`);
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${what}: expected a list`);
    assert.equal(actual.length, expected.length, `${what}: result count`);
    expected.forEach((e, i) => assertSame(actual[i], e, `${what}[${i}]`, { rtol, atol }));
    return;
  }
  if (expected && typeof expected === 'object' && 'shape' in expected) {
    assert.ok(actual && typeof actual === 'object' && 'shape' in actual, `${what}: expected a tensor, got ${JSON.stringify(actual)}`);
    assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
    assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
    const bad = expected.data.findIndex((e, i) => !close(actual.data[i], e, rtol, atol));
    assert.equal(bad, -1, `${what}: element ${bad}: JS ${actual.data[bad]} vs Python ${expected.data[bad]}`);
    return;
  }
  if (typeof expected === 'number') assert.ok(close(actual, expected, rtol, atol), `${what}: ${actual} vs ${expected}`);
  else assert.deepEqual(actual, expected, what);
}

// Runs op cases in JS (synchronously and through the pool) and in Python, and compares all three.
export async function checkOpCases(cases) {
  const expected = pythonReference(cases);
  for (let k = 0; k < cases.length; ++k) {
    const c = cases[k];
    const [ns, name] = c.op.split('::');
    const op = vt.ops[ns][name];
    const what = `${c.op}(${JSON.stringify(c.args).slice(0, 120)})`;
    const kw = c.kwargs ? [decode(c.kwargs)] : [];
    assertSame(encode(op.sync(...decode(c.args ?? []), ...kw)), expected[k], `${what} [sync]`);
    assertSame(encode(await op(...decode(c.args ?? []), ...kw)), expected[k], `${what} [async]`);
  }
}

// The collector, for leak tests (node exposes it only behind a flag).
export const gc = globalThis.gc ?? (v8.setFlagsFromString('--expose-gc'), vm.runInNewContext('gc'));

// Collects until `check()` holds (finalizers run after collection, on later turns of the loop) or gives up.
export async function collectUntil(check, rounds = 50) {
  for (let i = 0; i < rounds; ++i) {
    gc();
    await new Promise((r) => setImmediate(r));
    if (check()) return true;
  }
  return check();
}

// The value of `read()` once garbage left by earlier tests is gone: collects until it holds still for three
// rounds. A start measured before that would count tensors the collector frees later, and the memory
// would then "return" below its start.
export async function settledValue(read, rounds = 50) {
  let last = read();
  let still = 0;
  for (let i = 0; i < rounds && still < 3; ++i) {
    gc();
    await new Promise((r) => setImmediate(r));
    const v = read();
    still = v === last ? still + 1 : 0;
    last = v;
  }
  return last;
}

// A built reference plugin, as the main build leaves it (null when there is none).
export function referencePlugin() {
  const builds = join(repoRoot, 'build');
  if (!existsSync(builds)) return null;
  for (const b of readdirSync(builds)) {
    const d = join(builds, b, 'plugins', 'reference');
    if (!existsSync(d)) continue;
    const so = readdirSync(d).find((f) => f.endsWith('.so') && f.includes('ref') && !f.includes('cuda'));
    if (so) return join(d, so);
  }
  return null;
}
