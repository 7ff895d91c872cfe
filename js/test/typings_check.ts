// Compiled (not run) by types.test.mjs: the typings of index.d.ts and the generated ops.d.ts in use.
import * as vt from '../index.js';
async function main() {
  const x: vt.Tensor = vt.tensor([[1, 2], [3, 4]], { dtype: 'float32', requiresGrad: true });
  const y: vt.Tensor = await vt.ops.vt.mm(x, x);
  const z = vt.ops.vt.add.sync(y, x, { alpha: 2 });
  const [v, i] = await vt.ops.vt.topk(z, 1);
  const parts: vt.Tensor[] = vt.ops.vt.split_with_sizes.sync(z, [1, 1]);
  vt.noGrad(() => x.mul(2));
  const g = await vt.autograd.grad(z.sum(), [x]);
  console.log(v.shape, i.dtype, parts.length, g.length, vt.cuda.isAvailable(), vt.fabric.stats().ops);
}
main();
