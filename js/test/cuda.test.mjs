// CUDA from JavaScript (skipped without a GPU): copies both ways, ops on the device against the same ops on the
// CPU, queued work on a non-default stream, events, and device memory returning to its start.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { collectUntil, settledValue, vt } from './helpers.mjs';

const skip = !vt.cuda.isAvailable() && `no CUDA device (${vt.cuda.unavailableReason() || 'none found'})`;

test('host/device copies and ops on the device', { skip }, async () => {
  const x = vt.randn([64, 32]);
  const w = vt.randn([32, 16]);
  const xd = x.to('cuda');
  assert.equal(xd.device, 'cuda:0');
  assert.deepEqual(xd.cpu().toArray(), x.toArray());
  const yd = await vt.ops.vt.mm(xd, w.cuda());
  const y = vt.ops.vt.mm.sync(x, w);
  const a = yd.cpu().toArray().flat();
  const b = y.toArray().flat();
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-3 * (1 + Math.abs(b[i])), `element ${i}: ${v} vs ${b[i]}`));
  const s = vt.ops.vt.sum.sync(vt.ops.vt.gelu.sync(xd)).item();
  const sc = vt.ops.vt.sum.sync(vt.ops.vt.gelu.sync(x)).item();
  assert.ok(Math.abs(s - sc) <= 1e-3 * (1 + Math.abs(sc)));
  const g = vt.ones([8], { device: 'cuda', requiresGrad: true });
  vt.ops.vt.sum.sync(vt.ops.vt.mul.sync(g, g)).backward();
  assert.deepEqual(g.grad.cpu().toArray(), new Array(8).fill(2));
});

test('streams and events: queued work runs on the caller\'s current stream', { skip }, async () => {
  const s = vt.cuda.poolStream(0);
  const start = new vt.cuda.Event({ timing: true });
  const end = new vt.cuda.Event({ timing: true });
  const x = vt.ones([1 << 20], { device: 'cuda' });
  const filled = new vt.cuda.Event();  // x is written on the default stream: s waits for it, as in torch
  filled.record();
  filled.wait(s);
  const out = await vt.cuda.withStream(s, async () => {
    start.record(s);
    let y = x;
    for (let i = 0; i < 10; ++i) y = await vt.ops.vt.add(y, 1);
    end.record(s);
    return y;
  });
  end.synchronize();
  assert.equal(end.query(), true);
  assert.ok(start.elapsedTime(end) >= 0);
  vt.cuda.streamSynchronize(s);
  assert.equal(out.at(12345).item(), 11);
  assert.deepEqual(vt.cuda.currentStream(0), vt.cuda.defaultStream(0));
});

test('device memory returns to its start', { skip }, async () => {
  const warm = vt.randn([256, 256], { device: 'cuda' });
  vt.ops.vt.mm.sync(warm, warm).sum().item();  // first uses (cuBLAS, reductions) may keep memory of their own
  warm.dispose();
  vt.cuda.synchronize();
  // The tests before this one left device tensors for the collector.
  const start = await settledValue(() => vt.cuda.memoryStats(0)['allocated_bytes.all.current']);
  (() => {
    for (let i = 0; i < 100; ++i) {
      const t = vt.randn([256, 256], { device: 'cuda' });
      vt.ops.vt.mm.sync(t, t).sum().item();
    }
  })();
  const ok = await collectUntil(() => vt.cuda.memoryStats(0)['allocated_bytes.all.current'] === start);
  assert.ok(ok, `allocated bytes ${start} -> ${vt.cuda.memoryStats(0)['allocated_bytes.all.current']}`);
  assert.ok(vt.cuda.memorySnapshot(0).length > 0);
});

test('without a GPU, CUDA calls fail with the core\'s message', { skip: !skip && 'a GPU is present' }, () => {
  assert.equal(vt.cuda.deviceCount(), 0);
  assert.throws(() => vt.zeros([2], { device: 'cuda' }), vt.RuntimeError);
  assert.throws(() => vt.cuda.memoryStats(0), vt.RuntimeError);
});
