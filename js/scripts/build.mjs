// Builds the addon (build/vibetensor.node) with CMake.
//
// The core comes from the main project's static archive libvt_static.a: the directory in VT_BUILD_DIR, else
// the newest of ../build/*/ that has one (pip install . leaves it in build/<wheel tag>, a developer build in
// build/dev). When there is none, the main project is configured in ../build/js-core and only vt_static is
// built. VT_CUDA_ARCHS (default 90a) picks the GPU targets of that build, as for pip install.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');
const root = resolve(pkg, '..');
const require = createRequire(import.meta.url);
const jobs = process.env.CMAKE_BUILD_PARALLEL_LEVEL || '2';

function run(cmd, args) {
  console.log(`+ ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { stdio: 'inherit', cwd: pkg });
}

function findCoreBuild() {
  if (process.env.VT_BUILD_DIR) {
    const d = resolve(process.env.VT_BUILD_DIR);
    if (!existsSync(join(d, 'libvt_static.a'))) throw new Error(`VT_BUILD_DIR=${d} has no libvt_static.a`);
    return d;
  }
  const builds = join(root, 'build');
  const found = (existsSync(builds) ? readdirSync(builds) : [])
    .map((n) => join(builds, n))
    .filter((d) => existsSync(join(d, 'libvt_static.a')))
    .sort((a, b) => statSync(join(b, 'libvt_static.a')).mtimeMs - statSync(join(a, 'libvt_static.a')).mtimeMs);
  return found[0];
}

let core = findCoreBuild();
if (!core) {
  core = join(root, 'build', 'js-core');
  const gen = existsSync('/usr/bin/ninja') || process.env.PATH.split(':').some((p) => existsSync(join(p, 'ninja')));
  run('cmake', ['-S', root, '-B', core, ...(gen ? ['-G', 'Ninja'] : []), '-DVT_BUILD_PLUGINS=OFF',
    `-DVT_CUDA_ARCHS=${process.env.VT_CUDA_ARCHS || '90a'}`]);
  run('cmake', ['--build', core, '--target', 'vt_static', '-j', jobs]);
}
console.log(`vibetensor core: ${core}`);
const out = join(pkg, 'build');
run('cmake', ['-S', pkg, '-B', out, `-DVT_BUILD_DIR=${core}`,
  `-DNODE_API_INCLUDE=${require('node-api-headers').include_dir}`,
  `-DNODE_ADDON_API_INCLUDE=${dirname(require.resolve('node-addon-api/package.json'))}`]);
run('cmake', ['--build', out, '-j', jobs]);
run(process.execPath, [join(here, 'gen_types.mjs')]);
