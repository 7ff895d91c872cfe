// The generated ops namespace, plugins through loadLibrary (compared with the same plugin loaded in Python),
// Fabric counters, and the pool's configuration.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { T, assertSame, decode, encode, pythonReference, referencePlugin, vt } from './helpers.mjs';

test('ops are generated from every registered schema', () => {
  const add = vt.ops.vt.add;
  assert.equal(add.schema, 'add(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor');
  assert.deepEqual(add.info.args.map((a) => a.name), ['self', 'other', 'alpha']);
  assert.equal(add.info.args[2].kwargOnly, true);
  const n = Object.values(vt.ops).reduce((s, ns) => s + Object.keys(ns).length, 0);
  assert.ok(n > 150, `only ${n} ops`);
  assert.equal(typeof vt.ones([1]).logsumexp, 'function');  // every `self` op is a method
  assert.deepEqual(vt.refreshOps(), []);
});

test('loadLibrary: a plugin\'s ops appear in ops and compute what Python computes', { skip: !referencePlugin() && 'no reference plugin built (build the main project first)' }, () => {
  const path = referencePlugin();
  const names = vt.loadLibrary(path);
  const [expected] = pythonReference([{ load: path }]);
  assert.deepEqual([...names].sort(), expected.ops);
  for (const name of names) {
    const [ns, short] = name.split('::');
    assert.equal(typeof vt.ops[ns][short], 'function', name);
  }
  // Call the plugin's tensor ops of shape (Tensor, Tensor) -> Tensor or (Tensor) -> Tensor, in both languages.
  const x = T([1, -2, 3.5, 4], [4]);
  const y = T([0.5, 2, -1, 3], [4]);
  const cases = names.map((n) => vt.ops[n.split('::')[0]][n.split('::')[1]])
    .filter((op) => ['unary', 'binary'].includes(op.info.shape))
    .map((op) => ({ op: op.info.name, args: op.info.shape === 'unary' ? [x] : [x, y] }));
  assert.ok(cases.length > 0, 'the reference plugin has tensor ops');
  const ref = pythonReference([{ load: path }, ...cases]).slice(1);
  cases.forEach((c, k) => {
    const [ns, short] = c.op.split('::');
    assertSame(encode(vt.ops[ns][short].sync(...decode(c.args))), ref[k], c.op);
  });
  assert.deepEqual(vt.loadLibrary(path), names);  // loading again returns the first load's record
});

test('loadLibrary reports a missing file as the core does', () => {
  assert.throws(() => vt.loadLibrary('/nonexistent/plugin.so'), (e) => e instanceof vt.RuntimeError && /nonexistent/.test(e.message));
});

test('Fabric counters: pairs, totals and fallbacks', () => {
  vt.fabric.resetStats();
  assert.equal(vt.fabric.stats().ops, 0);
  vt.fabric._count(0, 1, 4096, 'p2p');
  vt.fabric._count(0, 1, 1024, 'staged', 'no_p2p');
  vt.fabric._count(1, 0, 512, 'p2p');
  const p01 = vt.fabric.stats(0, 1);
  assert.deepEqual([p01.ops, p01.bytes, p01.hits, p01.fallbacks.no_p2p], [2, 5120, 1, 1]);
  const total = vt.fabric.stats();
  const p10 = vt.fabric.stats(1, 0);
  assert.equal(total.ops, p01.ops + p10.ops);   // Note [Counter invariants]
  assert.equal(total.bytes, p01.bytes + p10.bytes);
  assert.ok(Array.isArray(vt.fabric.events()));
  assert.throws(() => vt.fabric._count(0, 1, 1, 'teleport'), { name: 'ValueError' });
  vt.fabric.resetStats();
  assert.equal(vt.fabric.stats().bytes, 0);
});

test('pool configuration', () => {
  assert.ok(vt.runtime.threads >= 1);
  assert.equal(vt.runtime.inFlight, 0);
});
