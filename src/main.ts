import * as core from '@actions/core'
import { HandshakeGates } from './handshake-gate'
import { runHost } from './host-runner'
import { InputError, getSettings } from './inputs'
import { FleetLog } from './output'
import { annotate, setOutputs, writeSummary } from './report'
import { runFleet } from './scheduler'

/** settings → fleet run → report. The only place that decides the action failed. */
export async function run(): Promise<void> {
  try {
    const settings = getSettings()
    if (settings.hostKeys.mode === 'off') {
      core.warning('host-key-check is off: host keys are not verified, so a machine in the middle could read this deploy', { title: 'Host keys not checked' })
    }
    const { hosts, concurrency } = settings
    core.info(`ssh-fleet: ${hosts.length} host${hosts.length === 1 ? '' : 's'}, concurrency ${concurrency}`)
    const log = new FleetLog(concurrency === 1 || hosts.length === 1)
    const started = Date.now()
    const gates = new HandshakeGates(concurrency)
    const results = await runFleet(hosts, concurrency, (host) => runHost(host, settings, log, { gates }))
    const elapsed = Date.now() - started
    annotate(results, elapsed)
    setOutputs(results)
    await writeSummary(results, elapsed)
    const failed = results.filter((r) => r.status === 'failed' || r.status === 'unreachable')
    if (failed.length > 0) core.setFailed(`${failed.length} of ${results.length} hosts failed: ${failed.map((r) => r.host).join(', ')}`)
  } catch (err) {
    if (err instanceof InputError) {
      core.setFailed(`${err.message}. Nothing was run on any host.`)
    } else {
      core.setFailed(`ssh-fleet failed: ${(err as Error).message}`)
    }
  }
}
