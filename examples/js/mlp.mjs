// A small MLP trained from JavaScript: two inputs, one hidden layer of 32 GELU units, two classes, on points
// labelled by the sign of x0 * x1 (an XOR pattern no linear model separates). Forward, loss and backward are
// queued on the worker pool (promises); the SGD step runs under noGrad with in-place ops. The example checks
// itself: the loss must fall below a third of its start and training accuracy reach 90%, else it exits 1.
//
//   node examples/js/mlp.mjs [cpu|cuda]
import * as vt from '../../js/lib/index.js';

const device = process.argv[2] ?? 'cpu';
if (device.startsWith('cuda') && !vt.cuda.isAvailable()) {
  console.log('skipped: needs 1 GPU');
  process.exit(0);
}
const { ops } = vt;
vt.manualSeed(0);

// Data: 512 points in [-1, 1)^2, label 1 where x0 * x1 > 0.
const n = 512;
const x = vt.ops.vt.sub.sync(vt.ops.vt.mul.sync(vt.rand([n, 2]), 2), 1).to(device);
const prod = vt.ops.vt.mul.sync(x.at(null, 0), x.at(null, 1));
const y = vt.ops.vt.to_dtype.sync(vt.ops.vt.gt.sync(prod, 0), 'int64');

// Parameters (a scaled normal init).
const param = (shape, scale) => {
  const p = vt.ops.vt.mul.sync(vt.randn(shape), vt.scalar.float(scale)).to(device);
  p.requiresGrad = true;
  return p;
};
const w1 = param([2, 32], 1.0);
const b1 = vt.zeros([32], { device, requiresGrad: true });
const w2 = param([32, 2], 0.3);
const b2 = vt.zeros([2], { device, requiresGrad: true });
const params = [w1, b1, w2, b2];

async function forward(input) {
  const h = await ops.vt.gelu(await ops.vt.add(await ops.vt.mm(input, w1), b1));
  return ops.vt.add(await ops.vt.mm(h, w2), b2);
}

const lr = 0.5;
let first;
let loss;
for (let step = 0; step < 300; ++step) {
  const logits = await forward(x);
  loss = await ops.vt.cross_entropy(logits, y);
  await vt.autograd.backward(loss);
  await vt.noGrad(async () => {
    await Promise.all(params.map((p) => ops.vt.sub_(p, p.grad, { alpha: vt.scalar.float(lr) })));
  });
  for (const p of params) p.grad = null;
  const value = loss.item();
  first ??= value;
  if (step % 50 === 0) console.log(`step ${step}: loss ${value.toFixed(4)}`);
}
const pred = await ops.vt.argmax(await vt.noGrad(() => forward(x)), 1);
const accuracy = ops.vt.sum.sync(ops.vt.eq.sync(pred, y)).item() / n;
const last = loss.item();
console.log(`loss ${first.toFixed(4)} -> ${last.toFixed(4)}, training accuracy ${(100 * accuracy).toFixed(1)}% on ${device}`);
if (!(last < first / 3 && accuracy >= 0.9)) {
  console.error('FAILED: the MLP did not learn the XOR pattern');
  process.exit(1);
}
console.log('OK');
