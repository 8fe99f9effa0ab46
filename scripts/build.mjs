// Bundles both actions with ncc: the action (dist/) and the merge action (dist/merge/).
// ssh2's native addons are optional and never shipped (the bundle runs on Linux, macOS and Windows
// without them). A plain `npm ci` compiles them, and ncc would then copy the .node files into dist/;
// so they are moved aside while ncc runs, and dist/ is the same whether or not they were compiled.
// patches/ are applied first (scripts/patch-deps.mjs): the bundle holds the patched ssh2.
import { execFileSync } from 'node:child_process'
import { existsSync, renameSync } from 'node:fs'
import { createRequire } from 'node:module'
import { applyPatches } from './patch-deps.mjs'

applyPatches()

const addons = ['node_modules/ssh2/lib/protocol/crypto/build', 'node_modules/cpu-features/build']
const aside = (dir) => `${dir}.ssh-fleet-build-aside`
// A build that was killed half-way left them aside: put them back first.
for (const dir of addons) if (existsSync(aside(dir)) && !existsSync(dir)) renameSync(aside(dir), dir)
const moved = addons.filter((dir) => existsSync(dir))
for (const dir of moved) renameSync(dir, aside(dir))
try {
  const ncc = createRequire(import.meta.url).resolve('@vercel/ncc/dist/ncc/cli.js')
  for (const [entry, out] of [
    ['src/index.ts', 'dist'],
    ['src/merge-index.ts', 'dist/merge']
  ]) {
    execFileSync(process.execPath, [ncc, 'build', entry, '-o', out, '--source-map', '--license', 'licenses.txt', '--quiet'], {
      stdio: 'inherit'
    })
  }
} finally {
  for (const dir of moved) renameSync(aside(dir), dir)
}
