/**
 * npm run bench -- thousand: a fleet of a thousand. 1,024 hosts × 1 step at concurrency 128, by
 * ssh-fleet and by the ssh2 floor (bare, and running ssh-fleet's remote command, for information), and
 * 256 hosts the same way for the per-host slopes (hosts are ports
 * of 64 sshd processes on loopback, each admitting 1,000 handshakes at once, so 128 get in together);
 * the report of 1,024 hosts × 10 steps timed in-process (report-scale.ts); and the wall of 10,000
 * hosts split over N matrix shards, projected from the measured per-host figures.
 */
import { cpus } from 'node:os'
import { rmSync } from 'node:fs'
import {
  BOOTSTRAP,
  action,
  floor,
  median,
  ratio,
  rowsTable,
  startFleet,
  targetLines,
  type BenchOptions,
  type BenchReport,
  type Measure
} from './bench'
import { timeReport } from './report-scale'

/** The fleet sizes the slopes are taken between, the concurrency, and the report's size. */
const FULL = { small: 256, large: 1024, c: 128, reportHosts: 1024, reportSteps: 10 }
const SMOKE = { small: 4, large: 8, c: 4, reportHosts: 8, reportSteps: 2 }
/** The fleet projected on paper, and the matrix shard counts it is split over. */
const PROJECTED_HOSTS = 10_000
const SHARDS = [1, 4, 16, 64]

export async function thousand(options: BenchOptions = {}): Promise<BenchReport> {
  const smoke = options.smoke ?? false
  const sizes = smoke ? SMOKE : FULL
  const repeats = options.repeats ?? (smoke ? 1 : 3)
  const rows: BenchReport['rows'] = []
  const fleet = await startFleet(sizes.large)
  try {
    for (const hosts of [sizes.small, sizes.large]) {
      const work = `${hosts} hosts × 1 step, c${sizes.c}`
      rows.push({ work, tool: 'ssh-fleet', ...(await median(repeats, () => action(fleet, hosts, 1, sizes.c))) })
      rows.push({ work, tool: 'ssh2 floor', ...(await median(repeats, () => floor(fleet, hosts, 1, sizes.c))) })
      // For information: how much of the gap is the hosts' share of a step (ssh-fleet's remote command).
      rows.push({ work, tool: 'ssh2 floor + bootstrap', ...(await median(repeats, () => floor(fleet, hosts, 1, sizes.c, BOOTSTRAP))) })
    }
  } finally {
    await fleet.sshd.stop()
    rmSync(fleet.dir, { recursive: true, force: true })
  }
  // Once, as a run builds its report once (cold: nothing in this process has run these writers yet).
  const report = await timeReport(sizes.reportHosts, sizes.reportSteps)
  const reportWork = `report of ${sizes.reportHosts} hosts × ${sizes.reportSteps} steps`
  rows.push({ work: `${reportWork} (in-process)`, tool: 'ssh-fleet', wallMs: report.wallMs, cpuMs: report.cpuMs, ok: true })

  const find = (hosts: number, tool: string): Measure => rows.find((r) => r.work.startsWith(`${hosts} hosts`) && r.tool === tool) as Measure
  const span = sizes.large - sizes.small
  /** Peak RSS per host between the two sizes, in KB. */
  const slope = (tool: string): number => ((find(sizes.large, tool).maxRssKb ?? NaN) - (find(sizes.small, tool).maxRssKb ?? NaN)) / span
  const ours = find(sizes.large, 'ssh-fleet')
  const floorLarge = find(sizes.large, 'ssh2 floor')
  // Each projected host costs what a host cost on average in the largest run: wall, and runner CPU.
  const wallPerHost = ours.wallMs / sizes.large
  const cpuPerHost = ours.cpuMs / sizes.large
  const ratios = [
    ratio(`${sizes.large} hosts × 1 step, c${sizes.c}: ssh-fleet / ssh2 floor wall`, ours.wallMs / floorLarge.wallMs, 1.1),
    ratio(
      `peak RSS per host, ${sizes.small} → ${sizes.large} hosts: ssh-fleet / ssh2 floor`,
      slope('ssh-fleet') / slope('ssh2 floor'),
      1.2
    ),
    ratio(`${reportWork}: seconds of CPU (one thread)`, report.cpuMs / 1000, 0.5)
  ]
  const pad = (s: string | number, n: number): string => String(s).padEnd(n)
  const text = [
    `ssh-fleet bench, a thousand hosts — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, median of ${repeats}`,
    '',
    ...rowsTable(rows),
    '',
    `peak RSS per host between ${sizes.small} and ${sizes.large} hosts: ssh-fleet ${slope('ssh-fleet').toFixed(1)} KB, ssh2 floor ${slope('ssh2 floor').toFixed(1)} KB`,
    `${reportWork}, each writer (wall / CPU): ${report.parts.map((p) => `${p.what} ${p.wallMs.toFixed(0)} / ${p.cpuMs.toFixed(0)} ms`).join(', ')}`,
    '',
    `projected wall of ${PROJECTED_HOSTS.toLocaleString('en')} hosts × 1 step, c${sizes.c}, split over N matrix shards (a runner each; job start not counted):`,
    `  at the loopback rate: hosts × ${wallPerHost.toFixed(1)} ms, ssh-fleet's wall per host at ${sizes.large} hosts (their sshd shared these cores)`,
    `  by runner CPU: hosts × ${cpuPerHost.toFixed(1)} ms, its client CPU per host there (what the runner alone needs when the hosts are other machines)`,
    `  ${pad('shards', 8)} ${pad('hosts each', 12)} ${pad('loopback rate', 15)} runner CPU`,
    ...SHARDS.map((n) => {
      const hosts = Math.ceil(PROJECTED_HOSTS / n)
      return `  ${pad(n, 8)} ${pad(hosts, 12)} ${pad(`${((hosts * wallPerHost) / 1000).toFixed(1)} s`, 15)} ${((hosts * cpuPerHost) / 1000).toFixed(1)} s`
    }),
    ...(smoke ? [] : targetLines(ratios))
  ].join('\n')
  return { rows, ratios, text }
}
