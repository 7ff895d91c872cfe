// Per-op overhead from JavaScript vs from Python, on tiny CPU tensors (4 float32 elements), where the time is
// all call overhead: argument conversion, dispatch and the result's wrapper. Both sides run in this one
// invocation (Python in a child process), the same ops through the same kind of call:
//   typed path   JS ops.vt.mul.sync(a, b)         Python vt.ops.vt.mul(a, b)   (Note [Unboxed fast path])
//   method       JS a.mul(b)                      Python a.mul(b)
//   boxed path   JS ops.vt.add.sync(a, b, {alpha}) Python vt.ops.vt.add(a, b, alpha=2)
//   boxed path   JS ops.vt.sum.sync(a, [0])       Python vt.ops.vt.sum(a, [0])
// and the asynchronous forms, which Python lacks: one awaited call at a time, and 64 in flight (throughput).
// The synchronous JS calls dispose() of their results (Python frees its results in the loop too).
// The goal: synchronous calls at most 1.5x Python's time per op. Prints a table and one JSON line.
//
//   node benchmarks/js_overhead.mjs [--device cuda] [--iters N] [--rounds R]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as vt from '../js/lib/index.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const device = opt('--device', 'cpu');
const iters = Number(opt('--iters', 200000));
const rounds = Math.max(1, Number(opt('--rounds', 3)));
if (device.startsWith('cuda') && !vt.cuda.isAvailable()) {
  console.log('skipped: needs 1 GPU');
  process.exit(0);
}
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function time(fn, n) {
  for (let i = 0; i < Math.min(n, 20000); ++i) fn();  // warm up (JIT, allocator caches)
  const best = [];
  for (let r = 0; r < 5; ++r) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; ++i) fn();
    best.push(Number(process.hrtime.bigint() - t0) / n / 1e3);
  }
  return Math.min(...best);  // microseconds per call
}
async function timeAsync(fn, n, inFlight) {
  const run = async () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i += inFlight) {
      const ps = [];
      for (let k = 0; k < inFlight; ++k) ps.push(fn());
      await Promise.all(ps);
    }
    return Number(process.hrtime.bigint() - t0) / n / 1e3;
  };
  await run();
  return Math.min(await run(), await run(), await run());
}

const a = vt.tensor([1, 2, 3, 4], { dtype: 'float32', device });
const b = vt.tensor([5, 6, 7, 8], { dtype: 'float32', device });
const { ops } = vt;
// Each JS call disposes of its result, as Python's loop frees each result when its reference count drops: a
// FinalizationRegistry callback runs only once the event loop turns, which a synchronous loop (and the blocking
// Python child between rounds) never lets happen, so undisposed results pile up - a million live tensors per
// row, whose page faults and cold memory then made the ratio of later rows and rounds 1.1x to 4x apart.
const jsRound = () => ({
  'mul typed': time(() => ops.vt.mul.sync(a, b).dispose(), iters),
  'mul method': time(() => a.mul(b).dispose(), iters),
  'add boxed (alpha)': time(() => ops.vt.add.sync(a, b, { alpha: 2 }).dispose(), iters),
  'sum boxed (dim)': time(() => ops.vt.sum.sync(a, [0]).dispose(), iters),
});

const py = `
import json, sys, time
sys.path[:0] = [p for p in sys.argv[1:] if p]
import vibetensor.torch as vt
dev = ${JSON.stringify(device)}
a = vt.tensor([1., 2., 3., 4.], device=dev); b = vt.tensor([5., 6., 7., 8.], device=dev)
mul, add, sm = vt.ops.vt.mul, vt.ops.vt.add, vt.ops.vt.sum
def t(fn, n=${iters}):
    for _ in range(min(n, 20000)): fn()
    best = []
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(n): fn()
        best.append((time.perf_counter_ns() - t0) / n / 1e3)
    return min(best)
print(json.dumps({"mul typed": t(lambda: mul(a, b)), "mul method": t(lambda: a.mul(b)),
                  "add boxed (alpha)": t(lambda: add(a, b, alpha=2)), "sum boxed (dim)": t(lambda: sm(a, [0]))}))
`;
const dev = join(root, 'python', 'vibetensor');
const devBuild = existsSync(dev) && readdirSync(dev).some((f) => f.startsWith('_C') && f.endsWith('.so'));
function pyRound() {
  const r = spawnSync(process.env.VT_PYTHON || 'python3', ['-c', py, devBuild ? join(root, 'python') : ''], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(1);
  }
  return JSON.parse(r.stdout);
}
// Rounds alternate between the two sides, so that a slow spell of a shared host hits both; each side's figure
// is its median over rounds (single runs on the GPU machine's host moved a ratio from 1.1x to 2.2x).
const jsRounds = [];
const pyRounds = [];
for (let r = 0; r < rounds; ++r) {
  jsRounds.push(jsRound());
  pyRounds.push(pyRound());
}
const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor((xs.length - 1) / 2)];
const js = Object.fromEntries(Object.keys(jsRounds[0]).map((k) => [k, median(jsRounds.map((x) => x[k]))]));
const python = Object.fromEntries(Object.keys(pyRounds[0]).map((k) => [k, median(pyRounds.map((x) => x[k]))]));
const spread = Object.fromEntries(Object.keys(js).map((k) => {
  const rs = jsRounds.map((x, i) => x[k] / pyRounds[i][k]);
  return [k, [Math.min(...rs), Math.max(...rs)]];
}));

const asyncOne = await timeAsync(() => ops.vt.mul(a, b), Math.min(iters, 20000), 1);
const asyncMany = await timeAsync(() => ops.vt.mul(a, b), Math.min(iters, 50000), 64);

console.log(`per-op time on ${device}, microseconds (pool threads: ${vt.runtime.threads})`);
console.log(`call                  JS      Python  JS/Python   (medians of ${rounds} alternating rounds; per-round ratios)`);
const ratios = {};
for (const k of Object.keys(js)) {
  ratios[k] = js[k] / python[k];
  const [lo, hi] = spread[k];
  console.log(`${k.padEnd(20)} ${js[k].toFixed(3).padStart(7)} ${python[k].toFixed(3).padStart(7)} ${ratios[k].toFixed(2).padStart(8)}x   ${lo.toFixed(2)}-${hi.toFixed(2)}x`);
}
console.log(`${'mul async, 1 in flight'.padEnd(20)} ${asyncOne.toFixed(3).padStart(7)}`);
console.log(`${'mul async, 64 in flight'.padEnd(20)} ${asyncMany.toFixed(3).padStart(7)}`);
const worst = Math.max(...Object.values(ratios));
console.log(`worst synchronous ratio ${worst.toFixed(2)}x (goal <= 1.5x): ${worst <= 1.5 ? 'met' : 'NOT met'}`);
console.log(JSON.stringify({ device, rounds, js, python, ratios, ratio_range: spread, async_1_us: asyncOne, async_64_us: asyncMany }));
