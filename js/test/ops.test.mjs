// Each op family called from JavaScript (synchronously and through the worker pool) against the same op called
// from Python (vt.ops.<ns>.<name>) on the same inputs, in the same test run (reference.py).
import { test } from 'node:test';

import { F, I, L, T, checkOpCases } from './helpers.mjs';

const a23 = T([1.5, -2, 3.25, 0, -0.5, 7], [2, 3]);
const b23 = T([0.5, 4, -1, 2, 8, -3], [2, 3]);
const b3 = T([10, 20, 30], [3]);
const i23 = T([1, -2, 3, 4, 5, -6], [2, 3], 'int64');
const sq = T([0.25, 1, 4, 9, 16, 0.01], [2, 3]);

test('elementwise binary ops, broadcasting, scalars and promotion', async () => {
  await checkOpCases([
    { op: 'vt::add', args: [a23, b23] },
    { op: 'vt::add', args: [a23, b3], kwargs: { alpha: F(0.5) } },
    { op: 'vt::add', args: [i23, I(3)] },
    { op: 'vt::add', args: [i23, F(0.5)] },
    { op: 'vt::sub', args: [a23, b23], kwargs: { alpha: I(2) } },
    { op: 'vt::mul', args: [a23, b3] },
    { op: 'vt::mul', args: [i23, a23] },
    { op: 'vt::div', args: [a23, b23] },
    { op: 'vt::div', args: [i23, T([2, 3, 2], [3], 'int64')], kwargs: { rounding_mode: 'floor' } },
    { op: 'vt::pow', args: [sq, F(0.5)] },
    { op: 'vt::eq', args: [a23, b23] },
    { op: 'vt::lt', args: [a23, b3] },
    { op: 'vt::maximum', args: [a23, b23] },
    { op: 'vt::bitwise_and', args: [i23, T([3, 3, 3], [3], 'int64')] },
    { op: 'vt::where', args: [T([true, false, true], [3], 'bool'), a23, b3] },
  ]);
});

test('elementwise unary and activation ops', async () => {
  await checkOpCases([
    ...['neg', 'abs', 'exp', 'tanh', 'sigmoid', 'relu', 'sin', 'floor'].map((op) => ({ op: `vt::${op}`, args: [a23] })),
    { op: 'vt::sqrt', args: [sq] },
    { op: 'vt::log', args: [sq] },
    { op: 'vt::gelu', args: [a23] },
    { op: 'vt::gelu', args: [a23], kwargs: { approximate: 'tanh' } },
    { op: 'vt::leaky_relu', args: [a23, F(0.1)] },
    { op: 'vt::elu', args: [a23] },
    { op: 'vt::hardtanh', args: [a23, I(-1), I(2)] },
    { op: 'vt::softplus', args: [a23] },
    { op: 'vt::clamp', args: [a23, F(-1), null] },
    { op: 'vt::to_dtype', args: [a23, 'int32'] },
    { op: 'vt::to_dtype', args: [a23, 'float16'] },
  ]);
});

test('reductions and scans', async () => {
  await checkOpCases([
    { op: 'vt::sum', args: [a23] },
    { op: 'vt::sum', args: [a23, [1], true] },
    { op: 'vt::sum', args: [i23], kwargs: { dtype: 'float64' } },
    { op: 'vt::mean', args: [a23, [0]] },
    { op: 'vt::prod', args: [a23, [1]] },
    { op: 'vt::amax', args: [a23, [0, 1]] },
    { op: 'vt::argmax', args: [a23, I(1)] },
    { op: 'vt::max_dim', args: [a23, I(0)] },
    { op: 'vt::var', args: [a23, [1]] },
    { op: 'vt::std', args: [a23], kwargs: { correction: I(0) } },
    { op: 'vt::norm', args: [a23] },
    { op: 'vt::logsumexp', args: [a23, [1]] },
    { op: 'vt::cumsum', args: [a23, I(1)] },
    { op: 'vt::softmax', args: [a23, I(-1)] },
    { op: 'vt::log_softmax', args: [a23, I(0)] },
  ]);
});

test('shape ops and views', async () => {
  const x = T([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23], [2, 3, 4]);
  await checkOpCases([
    { op: 'vt::reshape', args: [x, [4, -1]] },
    { op: 'vt::view', args: [x, [6, 4]] },
    { op: 'vt::permute', args: [x, [2, 0, 1]] },
    { op: 'vt::transpose', args: [x, I(0), I(2)] },
    { op: 'vt::expand', args: [b3, [2, 3]] },
    { op: 'vt::narrow', args: [x, I(2), I(1), I(2)] },
    { op: 'vt::select', args: [x, I(1), I(-1)] },
    { op: 'vt::slice', args: [x, I(2), I(0), null, I(2)] },
    { op: 'vt::squeeze', args: [T([1, 2, 3], [1, 3, 1])] },
    { op: 'vt::unsqueeze', args: [b3, I(0)] },
    { op: 'vt::flatten', args: [x, I(1)] },
    { op: 'vt::diagonal', args: [x, I(0), I(1), I(2)] },
    { op: 'vt::cat', args: [L(a23, b23), I(1)] },
    { op: 'vt::split_with_sizes', args: [x, [1, 3], I(2)] },
    { op: 'vt::unbind', args: [a23, I(1)] },
    { op: 'vt::contiguous', args: [x] },
  ]);
});

test('matrix products', async () => {
  const m = T([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [3, 4]);
  await checkOpCases([
    { op: 'vt::mm', args: [a23, T([1, 0, 2, -1, 0.5, 3], [3, 2])] },
    { op: 'vt::mm', args: [a23, m] },
    { op: 'vt::bmm', args: [T([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]), T([1, 0, 0, 1, 2, 1, 1, 2], [2, 2, 2])] },
  ]);
});

test('indexing, gather/scatter, sort and selection', async () => {
  const idx = T([0, 2, 1, 0, 0, 2], [2, 3], 'int64');
  await checkOpCases([
    { op: 'vt::index', args: [a23, L(null, T([2, 0], [2], 'int64'))] },
    { op: 'vt::index', args: [a23, L(T([true, false], [2], 'bool'))] },
    { op: 'vt::index_put_', args: [a23, L(T([1], [1], 'int64')), T([9, 9, 9], [3])] },
    { op: 'vt::gather', args: [a23, I(1), idx] },
    { op: 'vt::scatter', args: [T([0, 0, 0, 0, 0, 0], [2, 3]), I(1), idx, b23] },
    { op: 'vt::masked_fill_', args: [a23, T([true, false, true], [3], 'bool'), T([-7], [], 'float32')] },
    { op: 'vt::nonzero', args: [i23] },
    { op: 'vt::topk', args: [a23, I(2)] },
    { op: 'vt::sort', args: [a23, I(1), true] },
    { op: 'vt::embedding', args: [T([0, 1, 2, 3, 4, 5, 6, 7], [4, 2]), T([3, 0, 3], [3], 'int64')] },
  ]);
});

test('nn ops: normalisation and losses', async () => {
  const logits = T([0.1, 2, -1, 0.5, 0.3, 0.2, 3, -2, 1], [3, 3]);
  await checkOpCases([
    { op: 'vt::layer_norm', args: [a23, [3]] },
    { op: 'vt::layer_norm', args: [a23, [3], T([1, 2, 3], [3]), T([0, 0.5, -1], [3]), F(1e-3)] },
    { op: 'vt::rms_norm', args: [a23, [3], T([1, 0.5, 2], [3])] },
    { op: 'vt::cross_entropy', args: [logits, T([0, 2, 1], [3], 'int64')] },
    { op: 'vt::cross_entropy', args: [logits, T([0, 2, 1], [3], 'int64'), null, I(0)] },
  ]);
});

test('factories', async () => {
  await checkOpCases([
    { op: 'vt::full', args: [[2, 2], F(1.5)] },
    { op: 'vt::full', args: [[3], I(7)], kwargs: { dtype: 'int16' } },
    { op: 'vt::arange', args: [I(0), I(10), I(3)] },
    { op: 'vt::arange', args: [F(0), F(1), F(0.25)] },
    { op: 'vt::linspace', args: [I(-1), I(1), I(5)] },
    { op: 'vt::eye', args: [I(3)], kwargs: { dtype: 'float64' } },
  ]);
});
