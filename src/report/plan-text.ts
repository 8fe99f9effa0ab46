/**
 * The plan in words, before anything connects: the lines the log opens with, the listing a dry run
 * gives.
 */
import type { Settings, Step } from '../plan/settings'
import { describeRoute } from '../plan/route'
import { size } from './units'

/** The plan in words: batches with their hosts, steps with their options. */
export function describePlan(settings: Settings): string {
  const { hosts, batches, steps, strategy, concurrency, maxFailures } = settings
  const plural = (n: number, word: string, words = `${word}s`): string => `${n} ${n === 1 ? word : words}`
  const lines = [
    `ssh-fleet: ${plural(hosts.length, 'host')} in ${plural(batches.length, 'batch', 'batches')}, strategy ${strategy}, concurrency ${concurrency}` +
      `${maxFailures === Infinity ? '' : `, max-failures ${maxFailures}`}`
  ]
  if (batches.length > 1)
    batches.forEach((b, i) => lines.push(`  batch ${i + 1} (${plural(b.length, 'host')}): ${b.map((h) => h.name).join(', ')}`))
  // Where each host's connection goes, as resolved (ssh config, defaults): what a refused connection names too.
  for (const h of hosts) lines.push(`  host ${h.name}: user ${h.user}, address ${h.hostname}, port ${h.port}, route: ${describeRoute(h)}`)
  const describe = (s: Step, label: string): string => {
    const options = [
      s.timeoutMs > 0 && `timeout ${s.timeoutMs / 1000}s`,
      s.kind !== 'reboot' && s.retries > 0 && `retries ${s.retries}`,
      s.concurrency !== undefined && `concurrency ${s.concurrency}`,
      s.runOnce && 'run-once',
      s.continueOnError && 'continue-on-error',
      (s.kind === 'run' || s.kind === 'local') && s.capture && 'capture',
      s.kind === 'run' && s.sudo && `sudo${settings.sudoPassword !== undefined ? ' with sudo-password' : ' -n'}`,
      s.kind === 'upload' && s.exclude.length > 0 && `exclude ${s.exclude.join(', ')}`
    ].filter(Boolean)
    const what =
      s.kind === 'run'
        ? s.runFile
          ? `run-file ${s.runFile}`
          : s.script.trim()
        : s.kind === 'local'
          ? `on the runner: ${s.command}`
          : s.kind === 'upload'
            ? `upload ${s.files.length} files (${size(s.files.reduce((n, f) => n + f.size, 0))}) from ${s.from} to ${s.to}${s.delete ? ', deleting what is not in from' : ''}`
            : `reboot: ${s.command ?? `shutdown -r now (${settings.sudoPassword !== undefined ? 'sudo with sudo-password' : 'sudo -n'} unless root)`}, then wait for a new boot id`
    return `  ${label}: ${s.name}${options.length ? ` (${options.join(', ')})` : ''}: ${what.split('\n')[0]}${what.includes('\n') ? ' …' : ''}`
  }
  steps.forEach((s, i) => lines.push(describe(s, `step ${i + 1}`)))
  settings.onFailure.forEach((s, i) => lines.push(describe(s, `on-failure ${i + 1}`)))
  settings.always.forEach((s, i) => lines.push(describe(s, `always ${i + 1}`)))
  const extras = [
    settings.forwardAgent && "the runner's agent is forwarded",
    settings.legacyAlgorithms && 'legacy (SHA-1, CBC) algorithms are offered'
  ].filter(Boolean)
  if (extras.length) lines.push(`  ${extras.join('; ')}`)
  return lines.join('\n')
}
