// Errors from the core reach JavaScript with Python's message and the matching error class, from synchronous
// calls (thrown) and from the pool (rejected promises); argument errors are caught before any work is queued.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { I, T, decode, pythonReference, vt } from './helpers.mjs';

const CLASS = {
  RuntimeError: vt.RuntimeError, IndexError: vt.IndexError, TypeError: vt.VtTypeError, ValueError: vt.ValueError,
  NotImplementedError: vt.NotImplementedError,
};

const cases = [
  { op: 'vt::add', args: [T([1, 2, 3], [3]), T([1, 2], [2])] },                 // broadcast mismatch
  { op: 'vt::mm', args: [T([1, 2, 3, 4, 5, 6], [2, 3]), T([1, 2, 3, 4], [2, 2])] },  // inner sizes
  { op: 'vt::select', args: [T([1, 2, 3], [3]), I(0), I(5)] },                  // index out of range
  { op: 'vt::view', args: [T([1, 2, 3, 4, 5, 6], [2, 3]), [4, 2]] },            // element count
  { op: 'vt::cat', args: [[], I(0)] },                                          // empty list
  { op: 'vt::to_dtype', args: [T([1], [1]), 'complex64'] },                     // unknown dtype
  { op: 'vt::reshape', args: [T([1, 2], [2])] },                                // missing argument
  { op: 'vt::transpose', args: [T([1, 2], [2]), I(0), I(1), I(2)] },            // too many arguments
  { op: 'vt::add', args: [T([1], [1]), T([1], [1])], kwargs: { beta: I(1) } }, // unknown keyword
  { op: 'vt::sum', args: [T([1, 2], [2]), [3]] },                               // dim out of range
];

test('core errors: the same class and message as Python, sync and async', async () => {
  const expected = pythonReference(cases);
  for (let k = 0; k < cases.length; ++k) {
    const c = cases[k];
    const e = expected[k];
    assert.ok(e && e.error, `Python raised nothing for case ${k}: ${JSON.stringify(e)}`);
    const [ns, name] = c.op.split('::');
    const args = () => [...decode(c.args), ...(c.kwargs ? [decode(c.kwargs)] : [])];
    const check = (err) => {
      assert.ok(err instanceof CLASS[e.error], `case ${k}: ${err?.name} is not ${e.error} (${err?.message})`);
      assert.equal(err.message, e.message, `case ${k}`);
      assert.equal(err.kind, e.error);
      return true;
    };
    assert.throws(() => vt.ops[ns][name].sync(...args()), check);
    await assert.rejects(vt.ops[ns][name](...args()), check);
  }
});

test('error classes fit generic handlers', () => {
  assert.ok(new vt.IndexError('x') instanceof RangeError);
  assert.ok(new vt.VtTypeError('x') instanceof TypeError);
  assert.ok(new vt.RuntimeError('x') instanceof vt.VtError);
});

test('bad JS values name the argument', async () => {
  assert.throws(() => vt.ops.vt.add.sync('a', 1), { name: 'TypeError', message: "vt::add(): argument 'self' must be Tensor or a number, not string" });
  await assert.rejects(vt.ops.vt.sum(vt.zeros([2]), [1.5]), { name: 'TypeError', message: "vt::sum(): argument 'dim' must be int, not 1.5" });
  assert.throws(() => new vt.Tensor(), /made by vibetensor's factories/);
});

test('a disposed tensor refuses use, by name', () => {
  const t = vt.ones([2]);
  t.dispose();
  assert.equal(t.disposed, true);
  assert.throws(() => t.shape, { name: 'TypeError', message: 'shape: the tensor was disposed' });
  assert.throws(() => vt.ops.vt.neg.sync(t), { name: 'TypeError', message: 'self: the tensor was disposed' });
});
