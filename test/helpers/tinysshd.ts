/**
 * A real tinysshd on 127.0.0.1 for integration tests, run by tcpserver the way Debian sets it up: its own
 * ed25519 host key, a random free port, a user of its own (tinysshd reads only ~user/.ssh/authorized_keys,
 * and a user of its own keeps that file apart from the dropbear fixture's). tinysshd allows one session
 * channel per connection and closes the connection when it ends, and answers keepalives with UNIMPLEMENTED.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureUser, freePorts, isRoot, keygen, portOpen } from './sshd'

const TINYSSHD = '/usr/sbin/tinysshd'
const TCPSERVER = '/usr/bin/tcpserver'
const TINY_USER = 'sfl-tiny'
/** tinysshd tests need tinysshd, tcpserver and root (it switches to the user); elsewhere they are skipped, and say so. */
export const canRunTinysshd = existsSync(TINYSSHD) && existsSync(TCPSERVER) && isRoot

export interface Tinysshd {
  port: number
  user: string
  clientKey: string
  knownHosts: string
  log(): string
  stop(): Promise<void>
}

function ensureTinyUser(): { home: string; uid: number; gid: number } {
  ensureUser(TINY_USER, '/bin/sh')
  const [, , uid, gid, , home] = execFileSync('getent', ['passwd', TINY_USER], { encoding: 'utf8' }).trim().split(':')
  return { home, uid: Number(uid), gid: Number(gid) }
}

export async function startTinysshd(): Promise<Tinysshd> {
  if (!canRunTinysshd) throw new Error('tinysshd tests need tinysshd and ucspi-tcp (apt-get install tinysshd ucspi-tcp) and root')
  const { home, uid, gid } = ensureTinyUser()
  const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-tinysshd-'))
  execFileSync('tinysshd-makekey', [join(dir, 'keys')], { stdio: 'ignore' })
  const hostPub = execFileSync('tinysshd-printkey', [join(dir, 'keys')], { encoding: 'utf8' }).trim()
  const clientKey = keygen(join(dir, 'client'))
  const sshDir = join(home, '.ssh')
  mkdirSync(sshDir, { recursive: true, mode: 0o700 })
  writeFileSync(join(sshDir, 'authorized_keys'), readFileSync(join(dir, 'client.pub')), { mode: 0o600 })
  chownSync(sshDir, uid, gid)
  chownSync(join(sshDir, 'authorized_keys'), uid, gid)
  const [port] = await freePorts(1)
  const logFile = join(dir, 'tinysshd.log')
  writeFileSync(logFile, '')
  const proc: ChildProcess = spawn(TCPSERVER, ['-HRDl0', '127.0.0.1', String(port), TINYSSHD, '-v', join(dir, 'keys')], {
    stdio: ['ignore', 'ignore', 'pipe']
  })
  proc.stderr?.on('data', (d: Buffer) => writeFileSync(logFile, d, { flag: 'a' }))
  const log = (): string => readFileSync(logFile, 'utf8')
  const deadline = Date.now() + 10_000
  while (!(await portOpen(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`tinysshd did not start:\n${log()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return {
    port,
    user: TINY_USER,
    clientKey,
    knownHosts: `[127.0.0.1]:${port} ${hostPub}`,
    log,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r))
        proc.kill('SIGKILL')
        await exited
      }
      // Each connection is a tinysshd of its own, started by tcpserver: end those too.
      try {
        execFileSync('pkill', ['-KILL', '-f', join(dir, 'keys')], { stdio: 'ignore' })
      } catch {
        // none left
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
