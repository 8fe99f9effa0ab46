/**
 * A host that really reboots (root only): a real sshd in its own PID and mount namespaces
 * (`unshare --kill-child`), with its own boot id bind-mounted over /proc/sys/kernel/random/boot_id and
 * `shutdown`, `reboot` and `sudo` (in /usr/local/bin, first on sshd's PATH) that ask the fixture to
 * reboot it. Then, like a real machine: it keeps answering with the old boot id for `lingerMs`, every
 * process in it dies, the port refuses for `downMs`, and it comes back with a new boot id.
 * With `networkDrops`, it lives in a network namespace of its own and reboots like `reboot -f` or an
 * IPMI reset: the command never returns, its link goes down at once (its sessions never close, they
 * go silent), and the link comes back up with the new boot.
 */
import { randomUUID } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createNetns } from './netns'
import { portOpen, startSshd, type Sshd } from './sshd'

export interface RebootOptions {
  lingerMs?: number
  downMs?: number
  /** Never come back after going down. */
  neverReturn?: boolean
  /** `sudo -n` fails as sudo does when it wants a password. */
  sudoNeedsPassword?: boolean
  /** In a network namespace; a reboot takes the host's link down before anything closes. */
  networkDrops?: boolean
}

export interface RebootableHost {
  sshd: Sshd
  /** Where it listens: 127.0.0.1, or the namespace's address (`networkDrops`). */
  address: string
  port: number
  /** `user@address:port`, for the `hosts` input. */
  name: string
  /** A known_hosts line for it. */
  knownHosts: string
  bootId(): string
  /** Wall-clock ms when the host went down and when it accepted connections again, per reboot. */
  history: Array<{ requestedAt: number; downAt?: number; upAt?: number; bootId?: string }>
  stop(): Promise<void>
}

export async function startRebootableHost(options: RebootOptions = {}): Promise<RebootableHost> {
  const { lingerMs = 2000, downMs = 2000 } = options
  const state = { dir: '', bootId: randomUUID() }
  const ns = options.networkDrops ? createNetns() : undefined
  const sshd = await startSshd({
    ...(ns ? { netns: ns.name, listen: [`${ns.inner}:22`] } : {}),
    wrap: (argv) => {
      const bootFile = join(state.dir, 'boot_id')
      const bin = join(state.dir, 'bin')
      return [
        'unshare',
        '-m',
        '-p',
        '-f',
        '--kill-child',
        '--mount-proc',
        'sh',
        '-c',
        `mount --bind ${bootFile} /proc/sys/kernel/random/boot_id && mount --bind ${bin} /usr/local/bin && exec "$@"`,
        'sh',
        ...argv
      ]
    },
    prepare: (dir) => {
      state.dir = dir
      const bin = join(dir, 'bin')
      mkdirSync(bin)
      writeFileSync(join(dir, 'boot_id'), `${state.bootId}\n`, { mode: 0o644 })
      const request = join(dir, 'shared', 'reboot-requested')
      // A reboot that drops the network first never returns: the machine is gone under it.
      const shutdown = `#!/bin/sh\necho "The system will reboot now ($0 $*)"\ntouch ${request}\n${ns ? 'sleep 600\n' : ''}`
      const sudo = `#!/bin/sh\n[ "$1" = -n ] && shift\n${options.sudoNeedsPassword ? 'echo "sudo: a password is required" >&2\nexit 1\n' : 'echo "sudo: running $*"\nexec "$@"\n'}`
      for (const [file, text] of [
        ['shutdown', shutdown],
        ['reboot', shutdown],
        ['sudo', sudo]
      ]) {
        writeFileSync(join(bin, file), text)
        chmodSync(join(bin, file), 0o755)
      }
    }
  }).catch((err) => {
    ns?.remove()
    throw err
  })
  const port = sshd.ports[0]
  const address = ns?.inner ?? '127.0.0.1'
  const request = join(sshd.shared, 'reboot-requested')
  const history: RebootableHost['history'] = []
  let stopped = false
  let busy = false
  const watcher = setInterval(() => {
    if (busy || stopped || !existsSync(request)) return
    busy = true
    rmSync(request, { force: true })
    const entry: RebootableHost['history'][number] = { requestedAt: Date.now() }
    history.push(entry)
    void (async () => {
      ns?.link(false)
      await new Promise((r) => setTimeout(r, lingerMs))
      if (stopped) return
      await sshd.kill()
      ns?.forgetConnections()
      entry.downAt = Date.now()
      if (options.neverReturn) return
      await new Promise((r) => setTimeout(r, downMs))
      if (stopped) return
      state.bootId = randomUUID()
      writeFileSync(join(state.dir, 'boot_id'), `${state.bootId}\n`)
      ns?.link(true)
      await sshd.start()
      // startSshd has seen the port open; record the moment for "noticed within about a second".
      while (!(await portOpen(port, address))) await new Promise((r) => setTimeout(r, 10))
      entry.upAt = Date.now()
      entry.bootId = state.bootId
      busy = false
    })()
  }, 50)
  const hostKey = sshd.knownHosts.split('\n')[0].split(' ').slice(1).join(' ')
  return {
    sshd,
    address,
    port,
    name: `${sshd.user}@${address}:${port}`,
    knownHosts: `${port === 22 ? address : `[${address}]:${port}`} ${hostKey}`,
    bootId: () => state.bootId,
    history,
    stop: async () => {
      stopped = true
      clearInterval(watcher)
      await sshd.stop()
      ns?.remove()
    }
  }
}
