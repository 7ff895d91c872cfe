// Tensors from JavaScript: factories, dtypes, data in and out (copies and zero-copy views), views and basic
// indexing, against the values the same calls give in Python.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { I, T, encode, assertSame, pythonReference, vt } from './helpers.mjs';

test('factories and dtypes', () => {
  const z = vt.zeros([2, 3]);
  assert.deepEqual(z.shape, [2, 3]);
  assert.equal(z.dtype, 'float32');
  assert.equal(z.device, 'cpu');
  assert.deepEqual(vt.ones([2], { dtype: 'int32' }).toArray(), [1, 1]);
  assert.deepEqual(vt.full([2], 2.5).toArray(), [2.5, 2.5]);
  assert.deepEqual(vt.arange(4).toArray(), [0, 1, 2, 3]);
  assert.equal(vt.tensor([1, 2]).dtype, 'int64');
  assert.equal(vt.tensor([1, 2.5]).dtype, 'float32');
  assert.equal(vt.tensor([true, false]).dtype, 'bool');
  assert.deepEqual(vt.tensor([[1, 2], [3, 4]], { dtype: 'float64' }).toArray(), [[1, 2], [3, 4]]);
  assert.deepEqual(vt.tensor([true, false]).toArray(), [true, false]);
  assert.deepEqual(vt.tensor([1.5, -2], { dtype: 'bfloat16' }).toArray(), [1.5, -2]);
  assert.equal(vt.tensor(3.5).item(), 3.5);
  assert.throws(() => vt.tensor([[1, 2], [3]]), /ragged/);
  vt.manualSeed(7);
  const r1 = vt.randn([4]).toArray();
  vt.manualSeed(7);
  assert.deepEqual(vt.randn([4]).toArray(), r1);
  const u = vt.rand([1000]).toArray();
  assert.ok(u.every((x) => x >= 0 && x < 1));
});

test('typed arrays: copies out, zero-copy in and out', () => {
  const src = new Float32Array([1, 2, 3, 4, 5, 6]);
  const t = vt.fromTypedArray(src, [2, 3]);            // zero-copy: the tensor views src's memory
  src[0] = 42;
  assert.equal(t.at(0, 0).item(), 42);
  t.fill_(1);                                          // writes through to the array
  assert.deepEqual(Array.from(src), [1, 1, 1, 1, 1, 1]);
  const copy = vt.fromTypedArray(src, [6], { copy: true });
  src[1] = 5;
  assert.equal(copy.at(1).item(), 1);
  const view = t.asTypedArray();                       // zero-copy out: the very buffer it came from
  assert.equal(view.buffer, src.buffer);
  const y = vt.arange(6, undefined, 1, { dtype: 'float64' }).reshape([2, 3]);
  const yv = y.asTypedArray();
  assert.ok(yv instanceof Float64Array);
  yv[5] = -1;
  assert.equal(y.at(1, 2).item(), -1);
  assert.equal(y.asTypedArray().buffer, yv.buffer);    // one ArrayBuffer per storage
  const row = y.at(1).asTypedArray();                  // a view at an offset
  assert.deepEqual(Array.from(row), [3, 4, -1]);
  assert.throws(() => y.transpose(0, 1).asTypedArray(), { name: 'ValueError' });
  assert.deepEqual(Array.from(y.transpose(0, 1).toTypedArray()), [0, 3, 1, 4, 2, -1]);
  const big = vt.tensor([2 ** 40, -3], { dtype: 'int64' }).toTypedArray();
  assert.deepEqual(Array.from(big), [2n ** 40n, -3n]);
  assert.throws(() => vt.fromTypedArray(new Float32Array(5), [2, 3]), /needs 24 bytes, the array has 20/);
  // A Uint8Array at an odd offset read as float32 cannot be viewed in place: it is copied.
  const bytes = new Uint8Array(9);
  new Float32Array(bytes.buffer, 0, 2);
  const odd = vt.fromTypedArray(bytes.subarray(1), [2], { dtype: 'float32' });
  assert.deepEqual(odd.toArray(), [0, 0]);
});

test('views share storage; basic indexing', async () => {
  const x = vt.arange(12, undefined, 1, { dtype: 'float32' }).reshape([3, 4]);
  const v = x.at(1);
  assert.equal(v._storageId, x._storageId);
  assert.deepEqual(v.toArray(), [4, 5, 6, 7]);
  assert.deepEqual(x.at(null, [1, 3]).toArray(), [[1, 2], [5, 6], [9, 10]]);
  assert.deepEqual(x.at([null, null, 2], -1).toArray(), [3, 11]);
  v.fill_(0);
  assert.deepEqual(x.at(1).toArray(), [0, 0, 0, 0]);
  const t = x.transpose(0, 1);
  assert.equal(t.isContiguous(), false);
  assert.deepEqual(t.stride(), [1, 4]);
  const expected = pythonReference([
    { op: 'vt::slice', args: [T([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [3, 4]), I(1), I(1), I(-1), I(1)] },
  ]);
  assertSame(encode(vt.tensor([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]], { dtype: 'float32' }).at(null, [1, -1])),
    expected[0], 'at(null, [1, -1])');
});

test('host/device copies: to() keeps CPU tensors and refuses missing devices', () => {
  const x = vt.ones([2]);
  assert.equal(x.to('cpu'), x);
  assert.equal(x.to('float64').dtype, 'float64');
  if (!vt.cuda.isAvailable()) assert.throws(() => x.to('cuda'), vt.RuntimeError);
});
