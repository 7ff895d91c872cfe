// No leaks: after many iterations of ops, autograd, zero-copy buffers and queued work - tensors freed by the
// collector's finalizers or by dispose() - the live CPU memory returns exactly to where it started.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { collectUntil, settledValue, vt } from './helpers.mjs';

const same = (a, b) => a.allocatedBytes === b.allocatedBytes && a.allocations === b.allocations;

// The stats once garbage of earlier tests is collected (Note in helpers.mjs, settledValue).
const settledStart = async () => JSON.parse(await settledValue(() => JSON.stringify(vt.memoryStats())));

async function settle(start) {
  const ok = await collectUntil(() => same(vt.memoryStats(), start));
  assert.ok(ok, `CPU memory did not return to its start: ${JSON.stringify(start)} -> ${JSON.stringify(vt.memoryStats())}`);
}

test('memory stats count live CPU storages', () => {
  const before = vt.memoryStats();
  const t = vt.empty([1000]);
  const during = vt.memoryStats();
  assert.equal(during.allocations, before.allocations + 1);
  assert.equal(during.allocatedBytes, before.allocatedBytes + 4032);  // 4000 bytes in 64-byte units
  t.dispose();
  assert.ok(same(vt.memoryStats(), before));
});

test('sync ops, autograd and views: freed by the collector', async () => {
  const start = await settledStart();
  (() => {
    const w = vt.randn([16, 8], { requiresGrad: true });
    for (let i = 0; i < 300; ++i) {
      const x = vt.randn([4, 16]);
      const y = vt.ops.vt.gelu.sync(vt.ops.vt.mm.sync(x, w));
      const loss = y.mean();
      loss.backward();
      x.at(0, [1, 3]).toArray();
    }
  })();
  await settle(start);
});

test('queued ops and backward, disposed explicitly', async () => {
  const start = await settledStart();
  const w = vt.randn([32, 32], { requiresGrad: true });
  for (let i = 0; i < 200; ++i) {
    const x = vt.randn([8, 32]);
    const y = await vt.ops.vt.mm(x, w);
    const l = await vt.ops.vt.sum(y);
    await vt.autograd.backward(l);
    for (const t of [x, y, l]) t.dispose();
  }
  w.grad = null;
  w.dispose();
  await settle(start);
});

test('zero-copy buffers in both directions release their memory', async () => {
  const start = await settledStart();
  (() => {
    for (let i = 0; i < 200; ++i) {
      const t = vt.fromTypedArray(new Float32Array(256), [256]);
      const u = vt.ops.vt.add.sync(t, 1);
      u.asTypedArray()[0] = 3;
      vt.ops.vt.mul(u, 2);  // queued, never awaited
    }
  })();
  const done = await collectUntil(() => vt.runtime.inFlight === 0);
  assert.ok(done);
  await settle(start);
});
