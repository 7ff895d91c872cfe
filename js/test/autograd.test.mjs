// Autograd from JavaScript: gradients of op chains against the same chains differentiated in Python, grad(),
// no-grad scopes, and backward as a queued barrier.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { F, I, T, assertSame, decode, encode, pythonReference, ref, vt } from './helpers.mjs';

// Programs: inputs, then ops on inputs and earlier results (reference.py runs the same description).
const programs = [
  { // a one-hidden-layer MLP with a cross-entropy loss
    inputs: [T([0.5, -1, 2, 0.1, 0.3, -0.2], [2, 3], 'float32', true),
      T([0.2, -0.4, 0.6, 0.1, 0.5, -0.3, 0.7, 0.2, -0.1, 0.4, 0.3, -0.6], [3, 4], 'float32', true),
      T([0.1, 0, -0.1, 0.2], [4], 'float32', true)],
    steps: [{ op: 'vt::mm', args: [ref(0), ref(1)] }, { op: 'vt::add', args: [ref(3), ref(2)] },
      { op: 'vt::gelu', args: [ref(4)] }, { op: 'vt::cross_entropy', args: [ref(5), T([1, 3], [2], 'int64')] }],
  },
  { // reductions, broadcasting, views and a normalisation
    inputs: [T([1, 2, 3, 4, 5, 6], [2, 3], 'float32', true), T([0.5, 1, 2], [3], 'float32', true)],
    steps: [{ op: 'vt::mul', args: [ref(0), ref(1)] }, { op: 'vt::transpose', args: [ref(2), I(0), I(1)] },
      { op: 'vt::layer_norm', args: [ref(3), [2]] }, { op: 'vt::tanh', args: [ref(4)] },
      { op: 'vt::pow', args: [ref(5), F(2)] }, { op: 'vt::sum', args: [ref(6)] }],
  },
  { // softmax, indexing and a mean
    inputs: [T([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], [2, 4], 'float64', true)],
    steps: [{ op: 'vt::softmax', args: [ref(0), I(1)] }, { op: 'vt::select', args: [ref(1), I(1), I(2)] },
      { op: 'vt::exp', args: [ref(2)] }, { op: 'vt::mean', args: [ref(3)] }],
  },
];

function runProgram(p) {
  const refs = p.inputs.map((x) => decode(x));
  for (const s of p.steps) {
    const [ns, name] = s.op.split('::');
    refs.push(vt.ops[ns][name].sync(...decode(s.args, refs)));
  }
  return refs;
}

test('gradients of op chains match Python, sync and queued backward', async () => {
  const expected = pythonReference(programs.map((p) => ({ program: { ...p, grad: true } })));
  for (let k = 0; k < programs.length; ++k) {
    const refs = runProgram(programs[k]);
    refs.at(-1).backward();
    const n = programs[k].inputs.length;
    assertSame(refs.slice(0, n).map((x) => encode(x.grad)), expected[k], `program ${k} (sync backward)`, { rtol: 1e-5 });
    const again = runProgram(programs[k]);
    await vt.autograd.backward(again.at(-1));
    assertSame(again.slice(0, n).map((x) => encode(x.grad)), expected[k], `program ${k} (queued backward)`, { rtol: 1e-5 });
  }
});

test('grad() returns gradients without accumulating', async () => {
  const x = vt.tensor([1, 2, 3], { dtype: 'float32', requiresGrad: true });
  const y = vt.ops.vt.sum.sync(vt.ops.vt.mul.sync(x, x));
  const [g] = vt.autograd.gradSync(y, x, undefined, { retainGraph: true });
  assert.deepEqual(g.toArray(), [2, 4, 6]);
  const [g2] = await vt.autograd.grad(y, [x]);
  assert.deepEqual(g2.toArray(), [2, 4, 6]);
  assert.equal(x.grad, null);
});

test('leaf state, grad assignment and no-grad scopes', () => {
  const w = vt.ones([2, 2], { requiresGrad: true });
  assert.equal(w.isLeaf, true);
  const y = w.mul(3);
  assert.equal(y.isLeaf, false);
  assert.equal(typeof y.gradFn, 'string');
  const z = vt.noGrad(() => w.mul(3));
  assert.equal(z.requiresGrad, false);
  assert.equal(vt.isGradEnabled(), true);
  y.sum().backward();
  assert.deepEqual(w.grad.toArray(), [[3, 3], [3, 3]]);
  w.grad = null;
  assert.equal(w.grad, null);
  assert.throws(() => { w.grad = vt.zeros([3]); }, { message: 'assigned grad has data of a different size: [3] vs [2, 2]' });
  assert.equal(w.detach().requiresGrad, false);
  assert.throws(() => vt.noGrad(() => { throw new Error('inner'); }), /inner/);
  assert.equal(vt.isGradEnabled(), true);
  assert.throws(() => vt.tensor([1, 2]).backward(), vt.RuntimeError);
});
