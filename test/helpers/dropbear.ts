/**
 * A real dropbear server on 127.0.0.1 for integration tests: its own host key, random free ports, the
 * test user of the sshd fixture. dropbear reads only ~user/.ssh/authorized_keys, so the fixture adds
 * its key there (marked, removed at stop): that needs root, to touch no developer's own file.
 * `sftp: false` hides the SFTP server (a mount namespace with /usr/lib/openssh empty), as on images
 * that have dropbear alone.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureTestUser, freePorts, isRoot, keygen, portOpen } from './sshd'

export const DROPBEAR = ['/usr/sbin/dropbear', '/usr/local/sbin/dropbear'].find((p) => existsSync(p))
/** dropbear tests need the binary and root (see above); elsewhere they are skipped, and say so. */
export const canRunDropbear = DROPBEAR !== undefined && isRoot

export interface Dropbear {
  ports: number[]
  user: string
  clientKey: string
  knownHosts: string
  fingerprint: string
  log(): string
  stop(): Promise<void>
}

export interface DropbearOptions {
  ports?: number
  /** false: no SFTP server (see above). */
  sftp?: boolean
  /** Variables every session gets, as a host's own environment would give them (dropbear -e). */
  env?: Record<string, string>
}

export async function startDropbear(options: DropbearOptions = {}): Promise<Dropbear> {
  if (!canRunDropbear) throw new Error('dropbear tests need dropbear (apt-get install dropbear-bin) and root')
  const user = ensureTestUser()
  const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-dropbear-'))
  execFileSync('dropbearkey', ['-t', 'ed25519', '-f', join(dir, 'host_key')], { stdio: 'ignore' })
  const hostPub = execFileSync('dropbearkey', ['-y', '-f', join(dir, 'host_key')], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.startsWith('ssh-ed25519 ')) as string
  writeFileSync(join(dir, 'host_key.pub'), `${hostPub}\n`)
  const fingerprint = execFileSync('ssh-keygen', ['-lf', join(dir, 'host_key.pub')], { encoding: 'utf8' }).split(/\s+/)[1]
  const clientKey = keygen(join(dir, 'client'))
  const marker = `ssh-fleet-dropbear-${dir.split('-').pop()}`
  const home = execFileSync('getent', ['passwd', user], { encoding: 'utf8' }).split(':')[5]
  const sshDir = join(home, '.ssh')
  const authorized = join(sshDir, 'authorized_keys')
  mkdirSync(sshDir, { recursive: true, mode: 0o700 })
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }))
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }))
  const pub = readFileSync(join(dir, 'client.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')
  writeFileSync(authorized, `${pub} ${marker}\n`, { flag: 'a', mode: 0o600 })
  chownSync(sshDir, uid, gid)
  chownSync(authorized, uid, gid)
  const ports = await freePorts(options.ports ?? 1)
  const logFile = join(dir, 'dropbear.log')
  writeFileSync(logFile, '')
  const argv = [
    DROPBEAR as string,
    '-F',
    '-E',
    '-s',
    '-m',
    ...(options.env ? ['-e'] : []),
    '-r',
    join(dir, 'host_key'),
    '-P',
    join(dir, 'pid'),
    ...ports.flatMap((p) => ['-p', `127.0.0.1:${p}`])
  ]
  const command =
    options.sftp === false
      ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /usr/lib/openssh && exec "$@"', 'sh', ...argv]
      : argv
  const proc: ChildProcess = spawn(command[0], command.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    // Only these reach the sessions: not the test runner's own environment.
    ...(options.env ? { env: { PATH: process.env.PATH, ...options.env } } : {})
  })
  proc.stderr?.on('data', (d: Buffer) => writeFileSync(logFile, d, { flag: 'a' }))
  const log = (): string => readFileSync(logFile, 'utf8')
  const deadline = Date.now() + 10_000
  while (!(await Promise.all(ports.map((p) => portOpen(p)))).every(Boolean)) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`dropbear did not start:\n${log()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return {
    ports,
    user,
    clientKey,
    knownHosts: ports.map((p) => `[127.0.0.1]:${p} ${hostPub.split(' ').slice(0, 2).join(' ')}`).join('\n'),
    fingerprint,
    log,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r))
        proc.kill('SIGKILL') // with unshare, dropbear dies with the namespace's last process
        await exited
      }
      // Connections still open are dropbear processes of their own: end them too.
      try {
        execFileSync('pkill', ['-KILL', '-f', join(dir, 'host_key')], { stdio: 'ignore' })
      } catch {
        // none left
      }
      const keys = readFileSync(authorized, 'utf8')
        .split('\n')
        .filter((l) => !l.endsWith(` ${marker}`))
      writeFileSync(authorized, keys.join('\n'))
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
