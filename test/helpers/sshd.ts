/**
 * A real OpenSSH sshd on 127.0.0.1 for integration tests: temp config, its own host key, random
 * free ports (one sshd can serve many "hosts", one per port). As root it logs in a dedicated
 * unprivileged user (root's shell rc files here are slow and noisy); otherwise the current user.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer, connect as tcpConnect } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'

export const SSHD = ['/usr/sbin/sshd', '/usr/local/sbin/sshd', '/opt/homebrew/sbin/sshd'].find((p) => existsSync(p))
const TEST_USER = 'sshfleet'
export const isRoot = process.getuid?.() === 0

export interface SshdOptions {
  /** How many ports (hosts) it listens on. */
  ports?: number
  /** Extra sshd_config lines, e.g. `MaxStartups 2`. */
  config?: string[]
  /** Password for the test user (root only), enabling password authentication. */
  password?: string
  /** Run inside this network namespace (root only), listening on `listen`. */
  netns?: string
  /** Explicit `address:port` listen addresses (default: `ports` random loopback ports). */
  listen?: string[]
  /** Wraps the sshd command line, e.g. to run it in namespaces of its own. */
  wrap?: (argv: string[]) => string[]
  /** Called with the fixture's directory before sshd first starts. */
  prepare?: (dir: string) => void
}

export interface Sshd {
  ports: number[]
  user: string
  dir: string
  /** The client private key (ed25519, unencrypted) authorised for `user`. */
  clientKey: string
  /** known_hosts lines for every port: `[127.0.0.1]:port ssh-ed25519 …`. */
  knownHosts: string
  /** `SHA256:…` of the host key. */
  fingerprint: string
  hostKeyType: string
  /** Path where a test can drop files readable by the test user. */
  shared: string
  log(): string
  /** Starts the sshd processes again after kill(). */
  start(): Promise<void>
  /** SIGKILLs the sshd processes (with `wrap: unshare --kill-child`, everything inside dies too). */
  kill(): Promise<void>
  stop(): Promise<void>
}

/** Ports the kernel says are free right now. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const s = createServer()
          s.listen(0, '127.0.0.1', () => resolve(s))
        })
    )
  )
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

export function ensureTestUser(): string {
  if (!isRoot) return userInfo().username
  try {
    execFileSync('id', [TEST_USER], { stdio: 'ignore' })
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/bash', TEST_USER], { stdio: 'ignore' })
  }
  // With UsePAM no, sshd refuses a locked account ('!') even for keys: '*' is unlocked, no password.
  // Only a locked account is changed, so a password another fixture set stays.
  const hash = execFileSync('getent', ['shadow', TEST_USER], { encoding: 'utf8' }).split(':')[1] ?? ''
  if (hash.startsWith('!') || hash === '') execFileSync('usermod', ['-p', '*', TEST_USER], { stdio: 'ignore' })
  return TEST_USER
}

/**
 * A test user (root only) whose login shell is `shell`, for servers that must work with any login
 * shell. `busybox` is reached through a link named ash, the way images that ship it set it up.
 */
export function ensureShellUser(shell: 'dash' | 'zsh' | 'fish' | 'tcsh' | 'busybox'): string {
  const name = `sfl-${shell}`
  let path = execFileSync('sh', ['-c', `command -v ${shell}`], { encoding: 'utf8' }).trim()
  if (shell === 'busybox') {
    mkdirSync('/usr/local/lib/ssh-fleet-test', { recursive: true })
    if (!existsSync('/usr/local/lib/ssh-fleet-test/ash')) symlinkSync(path, '/usr/local/lib/ssh-fleet-test/ash')
    path = '/usr/local/lib/ssh-fleet-test/ash'
  }
  return ensureUser(name, path)
}

/** A test user (root only) with `shell` as login shell, created or updated, unlocked with no password. */
export function ensureUser(name: string, shell: string): string {
  try {
    execFileSync('id', [name], { stdio: 'ignore' })
    execFileSync('usermod', ['-s', shell, name], { stdio: 'ignore' })
  } catch {
    execFileSync('useradd', ['-m', '-s', shell, name], { stdio: 'ignore' })
  }
  execFileSync('usermod', ['-p', '*', name], { stdio: 'ignore' })
  return name
}

/**
 * A test user (root only) of its own with `shell` as login shell (bash by default) and, when given,
 * `bashrc` as its ~/.bashrc: sshd makes bash read it even for a non-interactive command, the way
 * hardened (`umask 077`) or chatty (a greeting) profiles reach every session.
 */
export function ensureProfileUser(name: string, options: { shell?: string; bashrc?: string } = {}): string {
  ensureUser(name, options.shell ?? '/bin/bash')
  const home = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).split(':')[5]
  writeFileSync(join(home, '.bashrc'), options.bashrc ?? '')
  return name
}

/** Whether a process runs (a zombie no one has reaped yet counts as ended: a container's init may never reap). */
export function alive(pid: string | number): boolean {
  if (!existsSync('/proc/self')) {
    // No /proc (macOS): signal 0 tells whether the process exists.
    try {
      process.kill(Number(pid), 0)
      return true
    } catch {
      return false
    }
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

function setPassword(user: string, password: string): void {
  execFileSync('chpasswd', { input: `${user}:${password}\n` })
}

export function keygen(path: string, type = 'ed25519', passphrase = '', format?: 'PEM'): string {
  rmSync(path, { force: true })
  rmSync(`${path}.pub`, { force: true })
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-f', path, '-C', 'ssh-fleet-test', ...(format ? ['-m', format] : [])])
  return readFileSync(path, 'utf8')
}

/** Whether something accepts TCP connections on address:port. */
export function portOpen(port: number, address = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, address)
    s.on('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}

export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  if (!SSHD) throw new Error('OpenSSH sshd not found: install it (apt-get install openssh-server); .ci/run does')
  const user = ensureTestUser()
  if (options.password) {
    if (!isRoot) throw new Error('password tests need root to set the test user password')
    setPassword(user, options.password)
  }
  const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-sshd-'))
  chmodSync(dir, 0o755) // the logged-in user reads authorized_keys from here
  const shared = join(dir, 'shared')
  mkdirSync(shared, { mode: 0o777 })
  chmodSync(shared, 0o777)
  if (isRoot) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 })
  keygen(join(dir, 'host_ed25519'))
  const clientKey = keygen(join(dir, 'client'))
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client.pub')), { mode: 0o644 })
  const listen = options.listen ?? (await freePorts(options.ports ?? 1)).map((p) => `127.0.0.1:${p}`)
  const ports = listen.map((a) => Number(a.slice(a.lastIndexOf(':') + 1)))
  const defaults = [
    `HostKey ${join(dir, 'host_ed25519')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'UsePAM no',
    'StrictModes no',
    `PasswordAuthentication ${options.password ? 'yes' : 'no'}`,
    'KbdInteractiveAuthentication no',
    'PermitRootLogin no',
    `AllowUsers ${user}`,
    'LogLevel VERBOSE',
    'MaxStartups 200',
    'Subsystem sftp internal-sftp'
  ]
  // A test's own lines replace the defaults of the same keyword (sshd keeps the first value of
  // most keywords but the last of some, such as MaxStartups).
  const keyword = (line: string): string => line.split(/\s+/)[0].toLowerCase()
  const overridden = new Set((options.config ?? []).map(keyword))
  const common = [...(options.config ?? []), ...defaults.filter((line) => !overridden.has(keyword(line)))]
  // One sshd listens on at most 16 addresses (MAX_LISTEN_SOCKS), so larger fleets get several.
  const groups: string[][] = []
  for (let i = 0; i < listen.length; i += 16) groups.push(listen.slice(i, i + 16))
  const logFile = join(dir, 'sshd.log')
  writeFileSync(logFile, '')
  const log = (): string => readFileSync(logFile, 'utf8')
  const configs = groups.map((group, i) => {
    const configFile = join(dir, `sshd_config.${i}`)
    writeFileSync(
      configFile,
      [...group.map((a) => `ListenAddress ${a}`), `PidFile ${join(dir, `sshd.${i}.pid`)}`, ...common].join('\n') + '\n'
    )
    return configFile
  })
  let procs: ChildProcess[] = []
  let removed = false
  const start = async (): Promise<void> => {
    const listenedBefore = (log().match(/^Server listening on /gm) ?? []).length
    procs = configs.map((configFile) => {
      let argv = [SSHD, '-D', '-e', '-f', configFile]
      if (options.wrap) argv = options.wrap(argv)
      if (options.netns) argv = ['ip', 'netns', 'exec', options.netns, ...argv]
      const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
      // A session's last words can come after the listener exited and stop() removed the log: dropped then.
      proc.stderr?.on('data', (d: Buffer) => removed || writeFileSync(logFile, d, { flag: 'a' }))
      return proc
    })
    const deadline = Date.now() + 10_000
    for (;;) {
      if (procs.some((p) => p.exitCode !== null)) {
        await new Promise((r) => setTimeout(r, 100)) // let its last words reach the log
        procs.forEach((p) => p.kill())
        throw new Error(`sshd exited at start:\n${log()}`)
      }
      // Inside a namespace the ports are not ours to probe, and a probe is a connection that never logs
      // in (OpenSSH 10 penalises the address for it): sshd says when each one listens.
      const listening =
        options.netns || options.wrap
          ? (log().match(/^Server listening on /gm) ?? []).length - listenedBefore >= listen.length
          : (await Promise.all(ports.map((p) => portOpen(p)))).every(Boolean)
      if (listening) return
      if (Date.now() > deadline) throw new Error(`sshd did not listen within 10s:\n${log()}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    await Promise.all(
      procs.map((proc) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return undefined
        const exited = new Promise((r) => proc.once('close', r)) // after its stderr's last words, which go to the log
        proc.kill(signal)
        return exited
      })
    )
  }
  options.prepare?.(dir)
  await start()
  const hostPub = readFileSync(join(dir, 'host_ed25519.pub'), 'utf8').trim().split(/\s+/)
  const fingerprint = execFileSync('ssh-keygen', ['-lf', join(dir, 'host_ed25519.pub')], { encoding: 'utf8' }).split(/\s+/)[1]
  return {
    ports,
    user,
    dir,
    clientKey,
    knownHosts: ports.map((p) => `[127.0.0.1]:${p} ${hostPub[0]} ${hostPub[1]}`).join('\n'),
    fingerprint,
    hostKeyType: hostPub[0],
    shared,
    log,
    start,
    kill: () => kill('SIGKILL'),
    stop: async () => {
      // unshare --fork ignores SIGTERM while it waits for its child; only SIGKILL ends it (and, with
      // --kill-child, everything inside).
      await kill(options.wrap ? 'SIGKILL' : 'SIGTERM')
      removed = true
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** A port of a test sshd as a host of the `hosts` input: `user@127.0.0.1:port`. */
export function hostName(sshd: Pick<Sshd, 'user'>, port: number): string {
  return `${sshd.user}@127.0.0.1:${port}`
}

/** `user@127.0.0.1:port` for each port, one a line. */
export function hostList(sshd: Sshd, ports = sshd.ports): string {
  return ports.map((p) => hostName(sshd, p)).join('\n')
}

/**
 * The most processes that ran at once, from a file of `+ <ns>` and `- <ns>` lines the hosts wrote
 * (`date +%s%N` on one machine's clock), and how many such lines there were.
 */
export function peakOverlap(file: string): { peak: number; events: number } {
  const events = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .map(([s, t]) => ({ delta: s === '+' ? 1 : -1, t: BigInt(t) }))
  events.sort((a, b) => (a.t === b.t ? a.delta - b.delta : a.t < b.t ? -1 : 1))
  let now = 0
  let peak = 0
  for (const e of events) peak = Math.max(peak, (now += e.delta))
  return { peak, events: events.length }
}
