// Loads the addon: VT_NODE_ADDON when set (a prebuilt vibetensor.node), else the one scripts/build.mjs made.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const path = process.env.VT_NODE_ADDON || join(dirname(fileURLToPath(import.meta.url)), '..', 'build', 'vibetensor.node');
if (!existsSync(path)) {
  throw new Error(`vibetensor: the addon ${path} is missing; build it with "npm run build" in the js/ folder`);
}
export const native = require(path);
