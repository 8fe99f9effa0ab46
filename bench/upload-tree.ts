/**
 * npm run bench -- upload: a tree of 2,000 files (1 KB to 20 MB, 200 MB in all, sizes from a fixed seed,
 * made once under /tmp and reused) uploaded to 8 loopback hosts of a real OpenSSH sshd, by ssh-fleet,
 * `scp -r` and `rsync -a` over ssh; then the unchanged tree again. Each host is a user of its own
 * (root only), so each has a home of its own to fill. Prints the table and the targets.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { seeded } from '../test/helpers/proxy'
import { ensureUser, isRoot, startSshd, type Sshd } from '../test/helpers/sshd'

const ROOT = resolve(__dirname, '..')
const RUSAGE = join(__dirname, 'rusage.cjs')
const KB = 1024
const MB = 1024 * 1024

/** The tree's shape; a change of any number gives a tree of its own (its directory is named for them). */
const FULL = { files: 2000, totalBytes: 200 * MB, minBytes: KB, maxBytes: 20 * MB, dirs: 40, hosts: 8, seed: 27 }
const SMOKE = { files: 40, totalBytes: 2 * MB, minBytes: KB, maxBytes: 512 * KB, dirs: 4, hosts: 2, seed: 27 }
type Shape = typeof FULL

/**
 * File sizes: log-uniform between the bounds raised to a power (many small files, few large, as a
 * build's output), one file at each bound, then scaled so they add up to the total.
 */
export function treeSizes(shape: Shape): number[] {
  const random = seeded(shape.seed)
  const span = Math.log(shape.maxBytes / shape.minBytes)
  const drawn = Array.from({ length: shape.files - 2 }, () => shape.minBytes * Math.exp(span * random() ** 3))
  const rest = shape.totalBytes - shape.minBytes - shape.maxBytes
  const sum = drawn.reduce((a, b) => a + b, 0)
  const sizes = drawn.map((s) => Math.min(shape.maxBytes, Math.max(shape.minBytes, Math.round((s * rest) / sum))))
  // Rounding leaves a few bytes over or under: the largest drawn file takes them.
  const largest = sizes.indexOf(Math.max(...sizes))
  sizes[largest] += rest - sizes.reduce((a, b) => a + b, 0)
  return [shape.minBytes, shape.maxBytes, ...sizes]
}

/** The tree on the runner's side, made once (a marker says it is whole) and reused by later runs. */
function makeTree(shape: Shape): { workspace: string; from: string; files: number; bytes: number } {
  const workspace = join(tmpdir(), `ssh-fleet-bench-tree-${shape.files}-${shape.totalBytes}-${shape.maxBytes}-${shape.dirs}-${shape.seed}`)
  const sizes = treeSizes(shape)
  const result = { workspace, from: 'tree', files: sizes.length, bytes: sizes.reduce((a, b) => a + b, 0) }
  if (existsSync(join(workspace, 'complete'))) return result
  rmSync(workspace, { recursive: true, force: true })
  const building = `${workspace}.tmp`
  rmSync(building, { recursive: true, force: true })
  sizes.forEach((bytes, i) => {
    // Two levels: d07/e3/f01234.bin, so directories are made at more than one depth.
    const dir = join(building, 'tree', `d${String(i % shape.dirs).padStart(2, '0')}`, `e${i % 3}`)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, `f${String(i).padStart(5, '0')}.bin`), randomBytes(bytes))
  })
  writeFileSync(join(building, 'complete'), '')
  renameSync(building, workspace)
  return result
}

/** Files and bytes below `dir`. */
function count(dir: string): { files: number; bytes: number } {
  const total = { files: 0, bytes: 0 }
  if (!existsSync(dir)) return total
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    total.files++
    total.bytes += statSync(join(e.parentPath, e.name)).size
  }
  return total
}

interface Measure {
  wallMs: number
  cpuMs: number
  maxRssKb?: number
  ok: boolean
}

function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; wallMs: number; stdout: string; stderr: string }> {
  const started = process.hrtime.bigint()
  return new Promise((done) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d))
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    child.on('close', (code) => done({ code, wallMs: Number(process.hrtime.bigint() - started) / 1e6, stdout, stderr }))
  })
}

interface Fleet {
  sshd: Sshd
  hosts: Array<{ user: string; port: number; home: string }>
  dir: string
  keyFile: string
  knownHostsFile: string
}

async function startFleet(hosts: number): Promise<Fleet> {
  const users = Array.from({ length: hosts }, (_, i) => ensureUser(`sfl-up${i}`, '/bin/sh'))
  const sshd = await startSshd({ ports: hosts, config: [`AllowUsers ${users.join(' ')}`, 'MaxStartups 100', 'MaxSessions 10'] })
  const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-bench-upload-'))
  const keyFile = join(dir, 'key')
  writeFileSync(keyFile, sshd.clientKey, { mode: 0o600 })
  const knownHostsFile = join(dir, 'known_hosts')
  writeFileSync(knownHostsFile, `${sshd.knownHosts}\n`)
  const home = (user: string): string =>
    readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${user}:`))
      ?.split(':')[5] ?? `/home/${user}`
  return { sshd, hosts: users.map((user, i) => ({ user, port: sshd.ports[i], home: home(user) })), dir, keyFile, knownHostsFile }
}

/** Where each tool puts the tree on each host: `tree` in the user's home. */
const DEST = 'tree'
const clear = (fleet: Fleet): void => fleet.hosts.forEach((h) => rmSync(join(h.home, DEST), { recursive: true, force: true }))
/** Whether every host holds the whole tree. */
const landed = (fleet: Fleet, tree: { files: number; bytes: number }): boolean =>
  fleet.hosts.every((h) => {
    const got = count(join(h.home, DEST))
    return got.files === tree.files && got.bytes === tree.bytes
  })

/** The action on every host at once; its stdout kept for the transfer lines. */
async function action(fleet: Fleet, tree: { workspace: string; from: string }): Promise<Measure & { stdout: string }> {
  const inputs: Record<string, string> = {
    hosts: fleet.hosts.map((h) => `${h.user}@127.0.0.1:${h.port}`).join('\n'),
    'private-key': fleet.sshd.clientKey,
    'known-hosts': fleet.sshd.knownHosts,
    concurrency: String(fleet.hosts.length),
    steps: `- upload: { from: ${tree.from}, to: ${DEST} }`
  }
  const files = { GITHUB_OUTPUT: join(fleet.dir, 'output'), GITHUB_STEP_SUMMARY: join(fleet.dir, 'summary') }
  Object.values(files).forEach((f) => writeFileSync(f, ''))
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: fleet.dir, GITHUB_WORKSPACE: tree.workspace, ...files }
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v
  const usage = join(fleet.dir, 'rusage.json')
  const r = await run([process.execPath, '-r', RUSAGE, join(ROOT, 'dist/index.js')], { ...env, BENCH_RUSAGE: usage })
  const u = JSON.parse(readFileSync(usage, 'utf8')) as { cpuMs: number; maxRssKb: number }
  if (r.code !== 0) console.error(r.stdout.slice(-2000))
  return { wallMs: r.wallMs, cpuMs: u.cpuMs, maxRssKb: u.maxRssKb, ok: r.code === 0, stdout: r.stdout }
}

/** One OpenSSH-based command per host, all hosts at once; client CPU from bash's `times` (its children). */
async function perHost(fleet: Fleet, command: (host: Fleet['hosts'][number], ssh: string) => string): Promise<Measure> {
  const ssh = `ssh -q -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${fleet.knownHostsFile} -i ${fleet.keyFile}`
  const script = `${fleet.hosts.map((h) => `(${command(h, ssh)}) &`).join('\n')}\nrc=0; for j in $(jobs -p); do wait $j || rc=1; done; times >&2; exit $rc`
  const r = await run(['bash', '-c', script], { PATH: process.env.PATH, HOME: fleet.dir })
  if (r.code !== 0) console.error(r.stderr.slice(-2000))
  const cpuMs = (r.stderr.trim().split('\n').pop() as string)
    .split(/\s+/)
    .map((t) => /(\d+)m([\d.]+)s/.exec(t))
    .reduce((n, m) => n + (m ? Number(m[1]) * 60_000 + Number(m[2]) * 1000 : 0), 0)
  return { wallMs: r.wallMs, cpuMs, ok: r.code === 0 }
}

const scp = (fleet: Fleet, tree: { workspace: string; from: string }): Promise<Measure> =>
  perHost(fleet, (h, ssh) => {
    const options = ssh.replace(/^ssh /, '').replace('-q ', '')
    return `scp -q -r ${options} -P ${h.port} ${join(tree.workspace, tree.from)} ${h.user}@127.0.0.1:${DEST}`
  })

const rsync = (fleet: Fleet, tree: { workspace: string; from: string }): Promise<Measure> =>
  perHost(fleet, (h, ssh) => `rsync -a -e '${ssh} -p ${h.port}' ${join(tree.workspace, tree.from)}/ ${h.user}@127.0.0.1:${DEST}/`)

export interface UploadBenchReport {
  rows: Array<{ work: string; tool: string } & Measure>
  ratios: Array<{ target: string; value: number; limit: number; met: boolean }>
  text: string
}

/** The median run of `n` by wall time; `before` runs ahead of each (uncounted). */
async function median(n: number, before: () => void, measure: () => Promise<Measure>): Promise<Measure> {
  const runs: Measure[] = []
  for (let i = 0; i < n; i++) {
    before()
    runs.push(await measure())
  }
  runs.sort((a, b) => a.wallMs - b.wallMs)
  return { ...runs[Math.floor(n / 2)], ok: runs.every((r) => r.ok) }
}

export async function uploadBench(options: { smoke?: boolean; repeats?: number } = {}): Promise<UploadBenchReport> {
  const smoke = options.smoke ?? false
  const repeats = options.repeats ?? (smoke ? 1 : 3)
  const shape = smoke ? SMOKE : FULL
  if (!isRoot) throw new Error('the upload bench needs root: each host is a user of its own, with a home of its own to fill')
  const tree = makeTree(shape)
  const fleet = await startFleet(shape.hosts)
  const rows: UploadBenchReport['rows'] = []
  const work = `${tree.files} files, ${(tree.bytes / MB).toFixed(0)} MB → ${shape.hosts} hosts`
  const unchanged = `the same tree again, unchanged → ${shape.hosts} hosts`
  try {
    const check = async (measure: () => Promise<Measure>): Promise<Measure> => {
      const m = await measure()
      return { ...m, ok: m.ok && landed(fleet, tree) }
    }
    const tools: Array<[string, () => Promise<Measure>]> = [
      ['ssh-fleet', () => action(fleet, tree)],
      ['scp -r', () => scp(fleet, tree)],
      ['rsync -a', () => rsync(fleet, tree)]
    ]
    for (const [tool, measure] of tools)
      rows.push({
        work,
        tool,
        ...(await median(
          repeats,
          () => clear(fleet),
          () => check(measure)
        ))
      })
    // Unchanged: the tree is there from one full upload by the same tool; only the second one is timed.
    for (const [tool, measure] of tools.filter(([t]) => t !== 'scp -r')) {
      clear(fleet)
      await measure()
      rows.push({
        work: unchanged,
        tool,
        ...(await median(
          repeats,
          () => {},
          () => check(measure)
        ))
      })
    }
  } finally {
    clear(fleet)
    await fleet.sshd.stop()
    rmSync(fleet.dir, { recursive: true, force: true })
  }
  const wall = (w: string, tool: string): number => rows.find((r) => r.work === w && r.tool === tool)?.wallMs ?? NaN
  const fastest = Math.min(wall(work, 'scp -r'), wall(work, 'rsync -a'))
  const ratio = (target: string, value: number, limit: number) => ({ target, value, limit, met: value <= limit })
  const ratios = [
    ratio('upload: ssh-fleet / the faster of scp -r and rsync -a', wall(work, 'ssh-fleet') / fastest, 1.0),
    ratio('upload unchanged: ssh-fleet second / ssh-fleet first', wall(unchanged, 'ssh-fleet') / wall(work, 'ssh-fleet'), 0.1)
  ]
  const pad = (s: string, n: number): string => s.padEnd(n)
  const num = (n: number | undefined, unit: string): string => (n === undefined ? 'n/a' : `${n.toFixed(0)} ${unit}`)
  const text = [
    `ssh-fleet upload bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, median of ${repeats}`,
    '',
    `${pad('work', 46)} ${pad('tool', 24)} ${pad('wall', 10)} ${pad('client CPU', 12)} ${pad('peak RSS', 12)} ok`,
    ...rows.map(
      (r) =>
        `${pad(r.work, 46)} ${pad(r.tool, 24)} ${pad(num(r.wallMs, 'ms'), 10)} ${pad(num(r.cpuMs, 'ms'), 12)} ${pad(r.maxRssKb === undefined ? 'n/a' : `${(r.maxRssKb / 1024).toFixed(0)} MB`, 12)} ${r.ok ? 'yes' : 'NO'}`
    ),
    ...(smoke
      ? []
      : [
          '',
          'targets:',
          ...ratios.map((r) => `  ${r.met ? 'met   ' : 'MISSED'} ${pad(r.target, 60)} ${r.value.toFixed(2)} (≤ ${r.limit})`)
        ])
  ].join('\n')
  return { rows, ratios, text }
}
