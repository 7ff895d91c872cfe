// The worker pool: per-tensor order (Note [Per-tensor order]), synchronous reads that wait for queued writes,
// and the in-flight cap with its waiting and non-blocking forms (Note [In-flight cap]).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { vt } from './helpers.mjs';

const { ops } = vt;

test('calls on one tensor run in program order', async () => {
  // x <- 2x + 1, and every third round x <- x - 3: any reordering changes the result (exact in float64). The
  // tensor is large enough that each op takes a while, so jobs run by two workers at once would overlap.
  const x = vt.zeros([1 << 18], { dtype: 'float64' });
  let expect = 0;
  const pending = [];
  for (let i = 0; i < 40; ++i) {
    pending.push(ops.vt.mul_(x, 2));
    pending.push(ops.vt.add_(x, 1));
    expect = expect * 2 + 1;
    if (i % 3 === 0) {
      pending.push(ops.vt.sub_(x, 3));
      expect -= 3;
    }
  }
  await Promise.all(pending);
  assert.deepEqual(new Set(x.toArray()), new Set([expect]));
});

test('views of one storage are ordered with their base', async () => {
  const base = vt.zeros([4, 1 << 16]);
  const row = base.at(2);
  const jobs = [];
  for (let i = 0; i < 20; ++i) {
    jobs.push(ops.vt.add_(row, 1));        // through the view
    jobs.push(ops.vt.mul_(base, 2));       // through the base
  }
  await Promise.all(jobs);
  let r = 0;
  for (let i = 0; i < 20; ++i) r = (r + 1) * 2;  // exact in float32
  assert.deepEqual(new Set(base.at(2).toArray()), new Set([r]));
  assert.deepEqual(new Set(base.at(0).toArray()), new Set([0]));
});

test('results resolve to tensors; chains of awaited ops compute what sync calls do', async () => {
  const a = vt.tensor([[1, 2], [3, 4]], { dtype: 'float32' });
  const b = await ops.vt.mm(a, a);
  const c = await ops.vt.add(b, a, { alpha: 2 });
  const [vals, idx] = await ops.vt.topk(c, 1);
  assert.deepEqual(c.toArray(), ops.vt.add.sync(ops.vt.mm.sync(a, a), a, { alpha: 2 }).toArray());
  assert.deepEqual(vals.toArray(), [[14], [30]]);
  assert.deepEqual(idx.toArray(), [[1], [1]]);
});

test('synchronous reads and calls wait for queued writes to their tensor', async () => {
  const x = vt.zeros([100000]);
  const done = [];
  for (let i = 0; i < 20; ++i) done.push(ops.vt.add_(x, 1));
  // Not awaited: toArray, item and sync ops must still see all 20 writes.
  assert.equal(vt.ops.vt.sum.sync(x).item(), 20 * 100000);
  assert.equal(x.at(5).item(), 20);
  await Promise.all(done);
});

test('in-place ops return the object they were called on, sync and async', async () => {
  const x = vt.zeros([3]);
  assert.equal(x.add_(1), x);
  assert.equal(vt.ops.vt.mul_.sync(x, 2), x);
  assert.equal(await ops.vt.add_(x, x), x);
  assert.equal(await ops.vt.fill_(x, 7), x);
  assert.deepEqual(x.toArray(), [7, 7, 7]);
  const y = x.add(1);
  assert.notEqual(y, x);
});

test('a queued call keeps its arguments alive after dispose()', async () => {
  const x = vt.ones([1000]);
  const p = ops.vt.mul(x, 3);
  x.dispose();
  assert.equal((await p).at(0).item(), 3);
});

test('the in-flight cap: calls past it wait, .try rejects, order is kept', async () => {
  const old = vt.runtime.maxInFlight;
  vt.runtime.setMaxInFlight(2);
  try {
    const x = vt.zeros([256]);
    const all = [];
    let maxSeen = 0;
    for (let i = 0; i < 30; ++i) {
      all.push(ops.vt.add_(x, 1));
      maxSeen = Math.max(maxSeen, vt.runtime.inFlight);
      assert.ok(vt.runtime.inFlight <= 2);
    }
    assert.equal(maxSeen, 2);
    assert.ok(vt.runtime.waiting > 0, 'calls past the cap wait');
    await assert.rejects(ops.vt.add_.try(x, 1), vt.InFlightLimitError);
    await Promise.all(all);
    assert.equal(vt.runtime.inFlight, 0);
    assert.equal(vt.runtime.waiting, 0);
    assert.equal(x.at(0).item(), 30);
    assert.equal((await ops.vt.add_.try(x, 1)).at(0).item(), 31);  // room again
    assert.throws(() => vt.runtime.setMaxInFlight(0), RangeError);
  } finally {
    vt.runtime.setMaxInFlight(old);
  }
});

test('grad mode travels with calls, also with calls waiting past the cap', async () => {
  const w = vt.ones([3], { requiresGrad: true });
  const p = vt.noGrad(() => ops.vt.mul(w, 2));   // fn returns a promise: grad stays off until it settles
  assert.equal(vt.isGradEnabled(), false);
  assert.equal((await p).requiresGrad, false);
  assert.equal(vt.isGradEnabled(), true);
  assert.equal((await ops.vt.mul(w, 2)).requiresGrad, true);
  const old = vt.runtime.maxInFlight;
  vt.runtime.setMaxInFlight(1);
  try {
    const first = ops.vt.mul(vt.ones([100000]), 2);
    let waiting;
    vt.noGrad(() => { waiting = ops.vt.mul(w, 3); });  // queued behind the cap, submitted after noGrad ended
    assert.equal(vt.runtime.waiting, 1);
    assert.equal(vt.isGradEnabled(), true);
    await first;
    assert.equal((await waiting).requiresGrad, false);
  } finally {
    vt.runtime.setMaxInFlight(old);
  }
});
