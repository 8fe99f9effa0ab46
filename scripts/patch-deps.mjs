// Applies patches/ (patch-package's files, `name+version.patch`) to node_modules: ssh2 carries what its
// release lacks (host and user certificates, mlkem768x25519-sha256; issue 26). `npm ci --ignore-scripts`
// runs no postinstall, so the build and the tests apply them. Idempotent: an applied patch counts as
// applied. Loud: a patch that does not apply, or a package whose version differs from the patch's name
// (patch-package's warning, made an error), throws, so an ssh2 update that breaks the patch fails the build.
// Run directly (`node scripts/patch-deps.mjs`), imported by scripts/build.mjs, or as vitest's global setup
// (its default export): unit tests import src, and so node_modules/ssh2, without a build.
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

export function applyPatches() {
  const cli = join(dirname(createRequire(import.meta.url).resolve('patch-package/package.json')), 'index.js')
  try {
    execFileSync(process.execPath, [cli, '--error-on-fail', '--error-on-warn'], { cwd: root, encoding: 'utf8', stdio: 'pipe' })
  } catch (err) {
    throw new Error(`patches/ do not apply to node_modules:\n${err.stdout ?? ''}${err.stderr ?? ''}`)
  }
}

export default applyPatches

if (process.argv[1] === fileURLToPath(import.meta.url)) applyPatches()
