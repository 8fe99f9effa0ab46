/** Runs the bundled action (dist/index.js) exactly as the runner does: INPUT_* variables and command files. */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'

export const ACTION = resolve(__dirname, '../../dist/index.js')
/** The merge action's bundle (merge/action.yml). */
export const MERGE_ACTION = resolve(__dirname, '../../dist/merge/index.js')

export interface ActionRun {
  code: number | null
  stdout: string
  stderr: string
  outputs: Record<string, string>
  summary: string
  results: Array<Record<string, any>>
  /** Annotation lines (`::error …`, `::warning …`, `::notice …`). */
  annotations: string[]
  durationMs: number
  /** With `rusage`: the action process's peak RSS (KiB) and CPU time. */
  usage?: { maxRssKb: number; cpuMs: number }
}

/** The runner's variable for an input: `INPUT_` and the name upper-cased, spaces to `_`, hyphens kept. */
export function inputVariable(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`
}

/** The action.yml beside a bundle: the main action's at the root, the merge action's in merge/. */
export function actionYml(bundle: string): string {
  return bundle === MERGE_ACTION ? resolve(__dirname, '../../merge/action.yml') : resolve(__dirname, '../../action.yml')
}

/**
 * The INPUT_* variables the runner sets: every default of the bundle's action.yml (the runner fills
 * them for inputs a workflow leaves out, so an input with a default is never empty there), then the
 * inputs the test gives.
 */
export function inputEnv(inputs: Record<string, string>, bundle: string = ACTION): Record<string, string> {
  const declared = (parseYaml(readFileSync(actionYml(bundle), 'utf8')) as { inputs?: Record<string, { default?: unknown }> }).inputs ?? {}
  const defaults = Object.entries(declared).flatMap(([name, input]) =>
    input?.default === undefined ? [] : [[inputVariable(name), String(input.default)] as const]
  )
  return Object.fromEntries([...defaults, ...Object.entries(inputs).map(([k, v]) => [inputVariable(k), v] as const)])
}

/** Parses the GITHUB_OUTPUT file format (`name<<DELIM` … `DELIM`). */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i])
    if (!m) continue
    const value: string[] = []
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i])
    out[m[1]] = value.join('\n')
  }
  return out
}

export interface RunOptions {
  env?: Record<string, string>
  timeoutMs?: number
  /** Called with each chunk of the action's stdout as it arrives. */
  onStdout?: (text: string) => void
  /** Measure the action process's peak RSS and CPU (bench/rusage.cjs preloaded). */
  rusage?: boolean
  /** The bundle to run: the main action (default) or MERGE_ACTION. */
  bundle?: string
  /** Keep only workflow command lines of stdout (a run that prints hundreds of MB). */
  commandsOnly?: boolean
  /** Called with the action's process once started (to signal it, as the runner's cancel does). */
  onSpawn?: (child: ChildProcess) => void
}

export async function runAction(inputs: Record<string, string>, options: RunOptions = {}): Promise<ActionRun> {
  const { env = {}, timeoutMs = 120_000 } = options
  const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-run-'))
  const outputFile = join(dir, 'output')
  const summaryFile = join(dir, 'summary')
  writeFileSync(outputFile, '')
  writeFileSync(summaryFile, '')
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('INPUT_') && k !== 'SSH_AUTH_SOCK'))
  const started = Date.now()
  const usageFile = join(dir, 'rusage.json')
  const preload = options.rusage ? ['-r', resolve(__dirname, '../../bench/rusage.cjs')] : []
  const child = spawn(process.execPath, [...preload, options.bundle ?? ACTION], {
    env: {
      ...base,
      HOME: dir,
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      BENCH_RUSAGE: usageFile,
      ...inputEnv(inputs, options.bundle),
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  options.onSpawn?.(child)
  let stdout = ''
  let stderr = ''
  let partial = ''
  child.stdout.on('data', (d: Buffer) => {
    if (options.commandsOnly) {
      const lines = (partial + d.toString()).split('\n')
      partial = lines.pop() as string
      stdout += lines
        .filter((l) => l.startsWith('::'))
        .map((l) => `${l}\n`)
        .join('')
    } else {
      stdout += d.toString()
    }
    options.onStdout?.(stdout)
  })
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((r) => child.on('close', r))
  clearTimeout(timer)
  const outputs = parseOutputFile(readFileSync(outputFile, 'utf8'))
  const summary = readFileSync(summaryFile, 'utf8')
  const usage = options.rusage ? JSON.parse(readFileSync(usageFile, 'utf8')) : undefined
  rmSync(dir, { recursive: true, force: true })
  return {
    code,
    stdout,
    stderr,
    outputs,
    summary,
    results: outputs.results ? JSON.parse(outputs.results) : [],
    annotations: stdout.split('\n').filter((l) => /^::(error|warning|notice)/.test(l)),
    durationMs: Date.now() - started,
    usage
  }
}

/** The result object of one host from a run. */
export function hostResult(run: ActionRun, host: string): Record<string, any> {
  const r = run.results.find((x) => x.host === host)
  if (!r) throw new Error(`no result for ${host} in ${JSON.stringify(run.results)}`)
  return r
}
