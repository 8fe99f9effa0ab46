// npm run bench [-- PART…] [-- --smoke] [-- --only TEXT]: runs the parts named (every part when none)
// and prints their tables; `--only` picks works within the fleet part.
import { bench, type BenchOptions, type BenchReport } from './bench'
import { thousand } from './thousand'
import { uploadBench } from './upload-tree'

/** Each part by name, in the order a whole run takes them. */
const PARTS: Record<string, (options: BenchOptions) => Promise<BenchReport>> = {
  fleet: bench,
  thousand,
  upload: uploadBench
}

const args = process.argv.slice(2)
const onlyAt = args.indexOf('--only')
const options: BenchOptions = { smoke: args.includes('--smoke'), only: onlyAt === -1 ? undefined : args[onlyAt + 1] }
const named = args.filter((a, i) => !a.startsWith('--') && (onlyAt === -1 || i !== onlyAt + 1))
const unknown = named.filter((name) => !Object.hasOwn(PARTS, name))

async function main(): Promise<void> {
  if (unknown.length) throw new Error(`no bench part ${unknown.join(', ')}: the parts are ${Object.keys(PARTS).join(', ')}`)
  for (const name of named.length ? named : Object.keys(PARTS)) {
    const report = await PARTS[name](options)
    console.log(`${report.text}\n`)
    if (report.rows.some((r) => !r.ok)) process.exitCode = 1
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
