/**
 * npm run bench: a loopback fleet of real OpenSSH sshd (hosts are ports; 16 per sshd process), and the
 * same work done by (a) the action (dist/index.js with INPUT_*), (b) the OpenSSH client, one `ssh` per
 * host per step through `xargs -P`, (c) a minimal ssh2 loop, the floor of our stack, and (d) that loop
 * running ssh-fleet's own remote command (the hosts' share of a step). Prints wall time, client CPU
 * time and peak RSS, and the target ratios. `--smoke` runs a tiny version; `--only TEXT` some work.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { startProxy } from '../test/helpers/proxy'
import { hostName, startSshd, type Sshd } from '../test/helpers/sshd'
import type { RunStep } from '../src/plan/settings'
import { remoteCommand, scriptPayload } from '../src/steps/remote-shell'

const ROOT = resolve(__dirname, '..')
const RUSAGE = join(__dirname, 'rusage.cjs')

export interface Measure {
  wallMs: number
  cpuMs: number
  maxRssKb?: number
  ok: boolean
}

function run(
  argv: string[],
  env: NodeJS.ProcessEnv,
  collect?: (chunk: Buffer) => void
): Promise<{ code: number | null; wallMs: number; stderr: string }> {
  const started = process.hrtime.bigint()
  return new Promise((done) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => collect?.(d))
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    child.on('close', (code) => done({ code, wallMs: Number(process.hrtime.bigint() - started) / 1e6, stderr }))
  })
}

/** Runs a node script with the rusage preload. */
async function node(
  script: string[],
  env: NodeJS.ProcessEnv,
  dir: string,
  collect?: (chunk: Buffer) => void
): Promise<Measure & { code: number | null }> {
  const file = join(dir, `rusage-${Math.random().toString(36).slice(2)}.json`)
  const r = await run([process.execPath, '-r', RUSAGE, ...script], { ...env, BENCH_RUSAGE: file }, collect)
  const u = JSON.parse(readFileSync(file, 'utf8')) as { cpuMs: number; maxRssKb: number }
  return { wallMs: r.wallMs, cpuMs: u.cpuMs, maxRssKb: u.maxRssKb, ok: r.code === 0, code: r.code }
}

export interface Fleet {
  sshd: Sshd
  hosts: Array<{ user: string; port: number }>
  dir: string
  keyFile: string
  /** `type base64` of the sshd host key, for known_hosts lines of any port (a relay's too). */
  hostKey: string
}

/** known_hosts lines for these hosts' ports. */
const knownHosts = (fleet: Fleet, hosts: Fleet['hosts']): string => hosts.map((h) => `[127.0.0.1]:${h.port} ${fleet.hostKey}`).join('\n')

export async function startFleet(count: number): Promise<Fleet> {
  const sshd = await startSshd({ ports: count, config: ['MaxStartups 1000', 'MaxSessions 100'] })
  const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-bench-'))
  const keyFile = join(dir, 'key')
  writeFileSync(keyFile, sshd.clientKey, { mode: 0o600 })
  return {
    sshd,
    hosts: sshd.ports.map((port) => ({ user: sshd.user, port })),
    dir,
    keyFile,
    hostKey: sshd.knownHosts.split('\n')[0].split(' ').slice(1).join(' ')
  }
}

const COMMAND = 'echo ok'

export async function action(
  fleet: Fleet,
  hosts: number,
  steps: number,
  concurrency: number,
  extra: Record<string, string> = {},
  collect?: (chunk: Buffer) => void
): Promise<Measure> {
  const chosen = fleet.hosts.slice(0, hosts)
  const list = chosen.map((h) => hostName(h, h.port)).join('\n')
  const plan = Array.from({ length: steps }, (_, i) => `- name: s${i}\n  run: ${COMMAND}`).join('\n')
  const inputs: Record<string, string> = {
    hosts: list,
    'private-key': fleet.sshd.clientKey,
    'known-hosts': knownHosts(fleet, chosen),
    concurrency: String(concurrency),
    ...(steps === 1 ? { run: COMMAND } : { steps: plan }),
    ...extra
  }
  // As on a runner: outputs and summary go to files (without them @actions/core prints to stdout).
  const files = { GITHUB_OUTPUT: join(fleet.dir, 'output'), GITHUB_STEP_SUMMARY: join(fleet.dir, 'summary') }
  Object.values(files).forEach((f) => writeFileSync(f, ''))
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: fleet.dir, ...files }
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v
  return node([join(ROOT, 'dist/index.js')], env, fleet.dir, collect ?? (() => {}))
}

async function openssh(fleet: Fleet, hosts: number, steps: number, concurrency: number): Promise<Measure> {
  const jobs = []
  for (let s = 0; s < steps; s++) for (const h of fleet.hosts.slice(0, hosts)) jobs.push(`${h.port}`)
  const list = join(fleet.dir, 'jobs')
  writeFileSync(list, jobs.join('\n') + '\n')
  const knownHostsFile = join(fleet.dir, 'known_hosts')
  writeFileSync(knownHostsFile, `${knownHosts(fleet, fleet.hosts.slice(0, hosts))}\n`)
  const ssh = `ssh -q -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${knownHostsFile} -i ${fleet.keyFile} -p {} ${fleet.sshd.user}@127.0.0.1 '${COMMAND}'`
  // bash's `times` reports the CPU time of every child: all the ssh processes.
  const script = `xargs -P ${concurrency} -I{} sh -c "${ssh} >/dev/null" < ${list}; rc=$?; times >&2; exit $rc`
  const r = await run(['bash', '-c', script], { PATH: process.env.PATH, HOME: fleet.dir })
  const children = r.stderr.trim().split('\n').pop() as string
  const cpuMs = children
    .split(/\s+/)
    .map((t) => {
      const m = /(\d+)m([\d.]+)s/.exec(t)
      return m ? Number(m[1]) * 60_000 + Number(m[2]) * 1000 : 0
    })
    .reduce((a, b) => a + b, 0)
  return { wallMs: r.wallMs, cpuMs, ok: r.code === 0 }
}

export async function floor(
  fleet: Fleet,
  hosts: number,
  steps: number,
  concurrency: number,
  remote?: { command: string; stdin: string }
): Promise<Measure> {
  const file = join(fleet.dir, 'floor-hosts.json')
  writeFileSync(file, JSON.stringify({ hosts: fleet.hosts.slice(0, hosts), key: fleet.sshd.clientKey }))
  const env = { PATH: process.env.PATH, HOME: fleet.dir, ...(remote ? { FLOOR_STDIN: remote.stdin } : {}) }
  return node([join(__dirname, 'floor.mjs'), file, String(concurrency), String(steps), remote?.command ?? COMMAND], env, fleet.dir)
}

/**
 * The floor running ssh-fleet's own remote command for the default shell (`bash -e`): the bootstrap
 * that reads the step id and runs the script from stdin. What the hosts' side of a step costs.
 */
export const BOOTSTRAP = {
  command: remoteCommand('bash -e'),
  stdin: scriptPayload({ script: COMMAND, env: {} } as unknown as RunStep, '0123456789abcdef', {
    FLEET_HOST: '127.0.0.1',
    FLEET_HOST_INDEX: '0',
    FLEET_USER: 'sshfleet',
    FLEET_PORT: '22',
    FLEET_STEP: 'step 1'
  })
}

/** The three ways of doing the same work, in the order the tables show them. */
const TOOLS: Array<[string, (fleet: Fleet, hosts: number, steps: number, concurrency: number) => Promise<Measure>]> = [
  ['ssh-fleet', (f, h, st, c) => action(f, h, st, c)],
  ['OpenSSH ssh × xargs -P', openssh],
  ['ssh2 floor', (f, h, st, c) => floor(f, h, st, c)],
  ['ssh2 floor + bootstrap', (f, h, st, c) => floor(f, h, st, c, BOOTSTRAP)]
]

/** The median run of `n` by wall time, so one noisy run does not decide a ratio. */
export async function median(n: number, measure: () => Promise<Measure>): Promise<Measure> {
  const runs: Measure[] = []
  for (let i = 0; i < n; i++) runs.push(await measure())
  runs.sort((a, b) => a.wallMs - b.wallMs)
  return { ...runs[Math.floor(n / 2)], ok: runs.every((r) => r.ok) }
}

export interface BenchReport {
  rows: Array<{ work: string; tool: string } & Measure>
  ratios: Array<{ target: string; value: number; limit: number; met: boolean }>
  text: string
}

/** What `npm run bench` passes each part. */
export interface BenchOptions {
  smoke?: boolean
  repeats?: number
  only?: string
}

/** A target: met when `value` is at most `limit`. */
export const ratio = (target: string, value: number, limit: number): BenchReport['ratios'][number] => ({
  target,
  value,
  limit,
  met: value <= limit
})

const pad = (s: string, n: number): string => s.padEnd(n)
const num = (n: number | undefined, unit: string): string => (n === undefined ? 'n/a' : `${n.toFixed(0)} ${unit}`)

/** The table every part prints: a row per work and tool. */
export function rowsTable(rows: BenchReport['rows']): string[] {
  return [
    `${pad('work', 46)} ${pad('tool', 24)} ${pad('wall', 10)} ${pad('client CPU', 12)} ${pad('peak RSS', 12)} ok`,
    ...rows.map(
      (r) =>
        `${pad(r.work, 46)} ${pad(r.tool, 24)} ${pad(num(r.wallMs, 'ms'), 10)} ${pad(num(r.cpuMs, 'ms'), 12)} ${pad(r.maxRssKb === undefined ? 'n/a' : `${(r.maxRssKb / 1024).toFixed(0)} MB`, 12)} ${r.ok ? 'yes' : 'NO'}`
    )
  ]
}

/** Every target with its value, met or MISSED. */
export function targetLines(ratios: BenchReport['ratios']): string[] {
  return [
    '',
    'targets:',
    ...ratios.map((r) => `  ${r.met ? 'met   ' : 'MISSED'} ${pad(r.target, 60)} ${r.value.toFixed(2)} (≤ ${r.limit})`)
  ]
}

export async function bench(options: BenchOptions = {}): Promise<BenchReport> {
  const smoke = options.smoke ?? false
  /** `--only TEXT` measures just the work whose name contains TEXT (a quicker loop while tuning). */
  const wanted = (work: string): boolean => options.only === undefined || work.includes(options.only)
  const repeats = options.repeats ?? (smoke ? 1 : 3)
  const sizes = smoke
    ? { small: 4, large: 6, c: 2, cLarge: 3, volumeHosts: 2, volumeMb: 1, dryRun: 50, rttMs: 20 }
    : { small: 64, large: 256, c: 16, cLarge: 64, volumeHosts: 8, volumeMb: 50, dryRun: 1000, rttMs: 100 }
  const fleet = await startFleet(sizes.large)
  const rows: BenchReport['rows'] = []
  try {
    const cases: Array<[string, number, number, number]> = [
      [`${sizes.small} hosts × 1 step, c${sizes.c}`, sizes.small, 1, sizes.c],
      [`${sizes.small} hosts × 5 steps, c${sizes.c}`, sizes.small, 5, sizes.c],
      [`${sizes.large} hosts × 1 step, c${sizes.cLarge}`, sizes.large, 1, sizes.cLarge]
    ]
    for (const [work, hosts, steps, c] of cases.filter(([work]) => wanted(work))) {
      for (const [tool, measure] of TOOLS) rows.push({ work, tool, ...(await median(repeats, () => measure(fleet, hosts, steps, c))) })
    }
    // Start-up: a dry-run of many hosts (they need not exist).
    if (wanted('dry-run')) {
      const many = Array.from({ length: sizes.dryRun }, (_, i) => `deploy@10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`).join('\n')
      const dry = await median(repeats, () =>
        node(
          [join(ROOT, 'dist/index.js')],
          {
            PATH: process.env.PATH,
            HOME: fleet.dir,
            INPUT_HOSTS: many,
            'INPUT_PRIVATE-KEY': fleet.sshd.clientKey,
            INPUT_RUN: 'true',
            'INPUT_DRY-RUN': 'true'
          },
          fleet.dir
        )
      )
      rows.push({ work: `dry-run of ${sizes.dryRun} hosts`, tool: 'ssh-fleet', ...dry })
    }
    if (wanted('MB of output')) await outputVolume()
    if (wanted('long path')) await longPath()
  } finally {
    await fleet.sshd.stop()
    rmSync(fleet.dir, { recursive: true, force: true })
  }

  async function outputVolume(): Promise<void> {
    // Output volume: every host prints many MB; memory must not follow, lines must stay whole.
    let pending = ''
    let lines = 0
    let malformed = 0
    const linePattern = /^\[[^\]]+\] (\d+) x{100}$|^\[[^\]]+\] » |^(ssh-fleet| {2}hosts?| {2}step|::)/
    const volume = await action(
      fleet,
      sizes.volumeHosts,
      1,
      sizes.volumeHosts,
      { run: `yes "$(printf 'x%.0s' $(seq 100))" | head -n $((${sizes.volumeMb} * 1024 * 1024 / 101)) | awk '{ print NR " " $0 }'` },
      (chunk) => {
        const parts = (pending + chunk.toString()).split('\n')
        pending = parts.pop() as string
        for (const line of parts) {
          lines++
          if (!linePattern.test(line) && malformed++ < 5) console.error(`malformed output line: ${JSON.stringify(line.slice(0, 200))}`)
        }
      }
    )
    rows.push({
      work: `${sizes.volumeHosts} hosts × ${sizes.volumeMb} MB of output (${lines} lines, ${malformed} malformed)`,
      tool: 'ssh-fleet',
      ...volume,
      ok: volume.ok && malformed === 0 && lines > sizes.volumeHosts * sizes.volumeMb * 10_000
    })
  }

  /** A long path: one host behind a relay that delays every chunk half the round trip each way. */
  async function longPath(): Promise<void> {
    const relay = await startProxy(fleet.hosts[0].port, { delayMs: sizes.rttMs / 2 })
    try {
      const far: Fleet = { ...fleet, hosts: [{ user: fleet.sshd.user, port: relay.port }] }
      for (const [tool, measure] of TOOLS) {
        rows.push({ work: 'long path: 1 host × 1 step, direct', tool, ...(await median(repeats, () => measure(fleet, 1, 1, 1))) })
        rows.push({
          work: `long path: 1 host × 1 step, RTT ${sizes.rttMs} ms`,
          tool,
          ...(await median(repeats, () => measure(far, 1, 1, 1)))
        })
        rows.push({
          work: `long path: 1 host × 5 steps, RTT ${sizes.rttMs} ms`,
          tool,
          ...(await median(repeats, () => measure(far, 1, 5, 1)))
        })
      }
    } finally {
      await relay.close()
    }
  }

  const unmeasured: Measure = { wallMs: NaN, cpuMs: NaN, maxRssKb: NaN, ok: false }
  const find = (work: string, tool: string): Measure => rows.find((r) => r.work.startsWith(work) && r.tool === tool) ?? unmeasured
  const w1 = `${sizes.small} hosts × 1 step`
  const w5 = `${sizes.small} hosts × 5 steps`
  const wl = `${sizes.large} hosts × 1 step`
  const far1 = `long path: 1 host × 1 step, RTT ${sizes.rttMs} ms`
  const far5 = `long path: 1 host × 5 steps, RTT ${sizes.rttMs} ms`
  /** Round trips of the first step beyond the direct run, and of each further step. */
  const trips = (tool: string): { first: number; further: number } => ({
    first: (find(far1, tool).wallMs - find('long path: 1 host × 1 step, direct', tool).wallMs) / sizes.rttMs,
    further: (find(far5, tool).wallMs - find(far1, tool).wallMs) / 4 / sizes.rttMs
  })
  const rtt = Object.fromEntries(TOOLS.map(([tool]) => [tool, trips(tool)]))
  const ratios = [
    ratio(`${w1}: ssh-fleet / OpenSSH wall`, find(w1, 'ssh-fleet').wallMs / find(w1, 'OpenSSH ssh × xargs -P').wallMs, 0.4),
    ratio(`${w1}: ssh-fleet / ssh2 floor wall`, find(w1, 'ssh-fleet').wallMs / find(w1, 'ssh2 floor').wallMs, 1.3),
    ratio(`${w5}: ssh-fleet / ssh2 floor wall`, find(w5, 'ssh-fleet').wallMs / find(w5, 'ssh2 floor').wallMs, 1.05),
    ratio(`${wl}: ssh-fleet / ssh2 floor wall`, find(wl, 'ssh-fleet').wallMs / find(wl, 'ssh2 floor').wallMs, 1.1),
    ratio(`${wl}: ssh-fleet / ssh2 floor peak RSS`, (find(wl, 'ssh-fleet').maxRssKb ?? 0) / (find(wl, 'ssh2 floor').maxRssKb ?? 1), 1.15),
    ratio('long path: ssh-fleet round trips per further step', rtt['ssh-fleet'].further, 1.3),
    ratio('long path: ssh-fleet first step / ssh2 floor first step', rtt['ssh-fleet'].first / Math.max(rtt['ssh2 floor'].first, 0.01), 1),
    ratio(`dry-run of ${sizes.dryRun} hosts: seconds`, find('dry-run', 'ssh-fleet').wallMs / 1000, 0.5)
  ].filter((r) => !Number.isNaN(r.value)) // with --only, the targets of what was measured
  const roundTrips = !wanted('long path')
    ? []
    : [
        '',
        `round trips on the long path (RTT ${sizes.rttMs} ms), beyond the direct run:`,
        `  ${'tool'.padEnd(24)} ${'first step'.padEnd(12)} each further step`,
        ...Object.entries(rtt).map(([tool, t]) => `  ${tool.padEnd(24)} ${t.first.toFixed(1).padEnd(12)} ${t.further.toFixed(1)}`)
      ]
  const text = [
    `ssh-fleet bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, median of ${repeats}`,
    '',
    ...rowsTable(rows),
    ...roundTrips,
    // A smoke run (npm test) only proves the benchmark works: a tiny fleet says nothing of targets.
    ...(smoke ? [] : targetLines(ratios))
  ].join('\n')
  return { rows, ratios, text }
}
