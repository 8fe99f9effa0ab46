/**
 * What users of the other SSH actions rely on, against a real sshd through the bundle: remote steps
 * that know where they run (FLEET_*), and a pty for hosts whose sudo wants a terminal.
 */
import { describe, expect, test } from 'vitest'
import { runAction } from '../helpers/action'
import { useSshd, useWorkspace } from '../helpers/fixtures'
import { hostList, hostName, type Sshd } from '../helpers/sshd'

let sshd: Sshd
const workspace = useWorkspace('peers')
useSshd({ ports: 2 }, (started) => (sshd = started))
const base = (ports = sshd.ports): Record<string, string> => ({
  hosts: hostList(sshd, ports),
  'private-key': sshd.clientKey,
  'known-hosts': sshd.knownHosts
})
const env = { env: { GITHUB_WORKSPACE: workspace } }

describe('where am I: FLEET_* in remote steps', () => {
  test('a remote step sees the same FLEET_HOST, FLEET_HOST_INDEX, FLEET_USER, FLEET_PORT and FLEET_STEP as a local one', async () => {
    const print = 'printf "%s|" "$FLEET_HOST" "$FLEET_HOST_INDEX" "$FLEET_USER" "$FLEET_PORT" "$FLEET_STEP"'
    const steps = `
- name: "Where's $HOME"
  run: '${print}'
  capture: true
- name: Local
  local: '${print}'
  capture: true
- name: Own FLEET_HOST
  run: '${print}'
  env: { FLEET_HOST: overridden }
  capture: true
`
    const run = await runAction({ ...base(), steps }, env)
    expect(run.code, run.stdout).toBe(0)
    const captured = JSON.parse(run.outputs.captured)
    sshd.ports.forEach((port, i) => {
      const where = (step: string): string => `127.0.0.1|${i}|${sshd.user}|${port}|${step}|`
      expect(captured[hostName(sshd, port)]).toEqual({
        "Where's $HOME": where("Where's $HOME"),
        Local: where('Local'),
        'Own FLEET_HOST': where('Own FLEET_HOST')
      })
    })
  })
})
