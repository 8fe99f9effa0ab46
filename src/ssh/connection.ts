import { clipText } from '../base/bounded'
import type { Duplex } from 'node:stream'
import { Client, type ClientChannel, type ConnectConfig, type ExecOptions, type SFTPWrapper } from 'ssh2'
import { AuthTrail, authHandler } from './auth'
import type { HandshakeGates } from './handshake-gate'
import { hostKeyAlgorithms, verifyHostKey } from './host-keys'
import { backoffDelay, cancellableSleep, withRetries, type Sleep } from './retry'
import type { Host, Settings } from '../plan/settings'

/** Why a connection could not be made; `transient` ones are worth retrying. */
export interface ConnectFailure {
  kind: 'host-key' | 'auth' | 'timeout' | 'refused' | 'lost-before-handshake' | 'network' | 'protocol' | 'cancelled'
  transient: boolean
  message: string
  /** The bastion of a proxy-jump route where it failed (its label, which the message starts with). */
  hop?: string
}

export type ConnectOptions = Pick<
  Settings,
  'auth' | 'hostKeys' | 'connectTimeoutMs' | 'connectRetries' | 'keepaliveIntervalMs' | 'keepaliveCountMax'
> &
  Partial<Pick<Settings, 'forwardAgent' | 'legacyAlgorithms'>>

/**
 * What `legacy-algorithms: true` adds for old switches and appliances: SHA-1 key exchange, host key
 * signatures and MACs, and CBC ciphers. Without it none of them is offered (ssh2 would offer ssh-rsa
 * and hmac-sha1 by default).
 */
const LEGACY = {
  kex: ['diffie-hellman-group14-sha1', 'diffie-hellman-group-exchange-sha1', 'diffie-hellman-group1-sha1'],
  serverHostKey: ['ssh-rsa', 'ssh-dss'],
  cipher: ['aes128-cbc', 'aes192-cbc', 'aes256-cbc', '3des-cbc'],
  hmac: ['hmac-sha1', 'hmac-sha1-etm@openssh.com']
} as const
const LEGACY_NAMES: ReadonlySet<string> = new Set(Object.values(LEGACY).flat())
const isLegacy = (name: string | undefined): boolean => name !== undefined && LEGACY_NAMES.has(name)

/** The algorithms offered to `host`. */
function algorithms(options: ConnectOptions, host: Host): ConnectConfig['algorithms'] {
  const hostKeys = hostKeyAlgorithms(options.hostKeys, host).filter((a) => options.legacyAlgorithms || !isLegacy(a))
  if (!options.legacyAlgorithms) return { serverHostKey: hostKeys, hmac: { remove: [...LEGACY.hmac] } } as ConnectConfig['algorithms']
  return {
    serverHostKey: [...hostKeys, 'ssh-dss'],
    kex: { append: [...LEGACY.kex] },
    cipher: { append: [...LEGACY.cipher] },
    hmac: { append: [...LEGACY.hmac] }
  } as ConnectConfig['algorithms']
}

type SshError = Error & { level?: string; code?: string | number }

/** The most of a server's text kept in a connection failure. */
const SERVER_TEXT_CHARS = 1024

const TRANSIENT_SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'EAI_AGAIN'
])

const THROTTLE_HINT = 'the server may be throttling new connections (sshd MaxStartups); lower concurrency if this persists'

/** Where a connection to `host` goes, for its errors: the address, and the route when it was taken. */
export function destination(host: Host, routed: boolean): string {
  const address = host.hostname.includes(':') ? `[${host.hostname}]:${host.port}` : `${host.hostname}:${host.port}`
  const route = host.route
  if (!routed || !route) return address
  return `${address} through ${route.via === 'jump' ? route.hops.map((h) => h.host.name).join(' → ') : 'the proxy command'}`
}

/**
 * Classifies a connection failure by ssh2's error level and the socket error code, never by message
 * text. `to` (destination()) is named in the network failures' messages.
 */
export function classifyConnectError(raw: SshError, connectTimeoutMs: number, to?: string): ConnectFailure {
  const at = to ? ` to ${to}` : ''
  // A message may carry the server's own text (a DISCONNECT reason): held short and without control characters.
  const err = { level: raw.level, code: raw.code, message: clipText(raw.message, SERVER_TEXT_CHARS) }
  switch (err.level) {
    case 'client-authentication':
    case 'agent':
      return { kind: 'auth', transient: false, message: `authentication failed: ${err.message}` }
    case 'client-timeout':
      return {
        kind: 'timeout',
        transient: true,
        message: `connection${at} timed out after ${connectTimeoutMs / 1000}s (TCP connect, key exchange or authentication)`
      }
    case 'handshake':
      // No algorithm in common: SHA-1 and CBC are offered only on request.
      return {
        kind: 'protocol',
        transient: false,
        message: `SSH handshake failed: ${err.message}; an old server may need legacy-algorithms: true`
      }
    case 'protocol':
      // ssh2 raises this when the server drops the connection before its banner: sshd refusing
      // unauthenticated connections past MaxStartups looks exactly like this.
      return { kind: 'lost-before-handshake', transient: true, message: `connection lost before handshake${at}: ${THROTTLE_HINT}` }
    case 'client-socket': {
      const code = String(err.code ?? '')
      if (code === 'EPROXY') return { kind: 'network', transient: true, message: err.message }
      if (code === 'ECONNRESET') {
        return {
          kind: 'lost-before-handshake',
          transient: true,
          message: `connection reset during handshake (${code})${at}: ${THROTTLE_HINT}`
        }
      }
      if (code === 'ECONNREFUSED')
        return { kind: 'refused', transient: true, message: `connection refused (ECONNREFUSED)${at}: is sshd listening on that port?` }
      return { kind: 'network', transient: TRANSIENT_SOCKET_CODES.has(code), message: `network error${at}: ${err.message}` }
    }
    default:
      // A numeric code is the reason of the server's DISCONNECT (RFC 4253 11.1); its text is the server's.
      if (typeof err.code === 'number')
        return { kind: 'protocol', transient: false, message: `the server disconnected (reason ${err.code}): ${err.message}` }
      return { kind: 'protocol', transient: false, message: `SSH handshake failed: ${err.message}` }
  }
}

/** The job was cancelled before a connection could be made. */
const CANCELLED: ConnectFailure = {
  kind: 'cancelled',
  transient: false,
  message: 'cancelled (the job was cancelled) before the connection was made'
}

/** A channel could not be opened; `refused` when the server said no (e.g. MaxSessions) on a live connection. */
export class ChannelOpenError extends Error {
  constructor(
    message: string,
    readonly refused: boolean
  ) {
    super(message)
  }
}

/** A hop of a route (a bastion) that settled on legacy algorithms, and which. */
export interface LegacyHop {
  hop: string
  algorithms: string[]
}

/** A stream to a host along its route; `legacyHops` names the hops on the way that use legacy algorithms. */
export type RouteStream = Duplex & { legacyHops?: LegacyHop[] }

/** One authenticated SSH connection to a host, reused by every step of that host. */
export class Connection {
  /** What accepted the host's key, e.g. `host key ssh-ed25519 SHA256:… accepted by known-hosts line 2`. */
  hostKey = ''
  /** The legacy algorithms (`legacy-algorithms`) the handshake settled on, if any. */
  legacy: string[] = []
  /** The hops of its route (bastions) that settled on legacy algorithms. */
  legacyHops: LegacyHop[] = []
  /** Forward the runner's agent on every exec channel (`forward-agent`). */
  forwardAgent = false
  private lost?: string
  private readonly lostWaiters = new Set<(reason: string) => void>()

  constructor(
    readonly client: Client,
    private readonly keepalive: { intervalMs: number; countMax: number }
  ) {
    // Listeners stay for the client's whole life: ssh2 can emit errors after end(), and an
    // unhandled 'error' event would take the whole process down.
    client.on('error', (err: SshError) => this.markLost(this.describeLoss(err)))
    client.on('close', () => this.markLost('connection closed by the remote host'))
  }

  private markLost(reason: string): void {
    if (this.lost !== undefined) return
    this.lost = reason
    const waiters = [...this.lostWaiters]
    this.lostWaiters.clear()
    waiters.forEach((f) => f(reason))
  }

  /**
   * Calls `listener` with the reason once the connection is gone (soon, if it is already). Work that
   * ssh2 may leave pending when the connection dies (an SFTP transfer's callbacks never fire) ends by
   * this. Returns the way to stop listening: work that ended otherwise lets go of its listener, so a
   * long plan does not keep every finished step alive until the connection closes.
   */
  onLost(listener: (reason: string) => void): () => void {
    const lost = this.lost
    if (lost !== undefined) {
      queueMicrotask(() => listener(lost))
      return () => {}
    }
    this.lostWaiters.add(listener)
    return () => this.lostWaiters.delete(listener)
  }

  private describeLoss(err: SshError): string {
    if (err.level === 'client-timeout') {
      const { intervalMs, countMax } = this.keepalive
      return `host stopped answering keepalives (${countMax} unanswered at ${intervalMs / 1000}s intervals): the host or the network path is down`
    }
    return `connection lost: ${err.code ?? err.message}`
  }

  /** Why the connection is gone, or undefined while it is up. */
  get lostReason(): string | undefined {
    return this.lost
  }

  /**
   * Opens a channel with ssh2's `open`, rejecting with ChannelOpenError: `refused` when the server
   * answered CHANNEL_OPEN_FAILURE (a numeric reason) on a live connection, e.g. past MaxSessions.
   */
  private channel<T>(open: (cb: (err: Error | undefined, value: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      if (this.lost) return reject(new ChannelOpenError(this.lost, false))
      try {
        open((err, value) => {
          if (!err) return resolve(value)
          const refused = typeof (err as { reason?: unknown }).reason === 'number' && !this.lost
          reject(
            new ChannelOpenError(
              refused ? `channel refused by the server: ${err.message} (MaxSessions?)` : (this.lost ?? err.message),
              refused
            )
          )
        })
      } catch (err) {
        reject(new ChannelOpenError(this.lost ?? (err as Error).message, false))
      }
    })
  }

  /** Opens an exec channel. Rejects with ChannelOpenError. */
  exec(command: string): Promise<ClientChannel> {
    // ssh2 takes agentForward on exec (its types do not list it): the channel asks for the agent first.
    const options = (this.forwardAgent ? { agentForward: true } : {}) as ExecOptions
    return this.channel((cb) => this.client.exec(command, options, cb))
  }

  /**
   * Exec channels opened ahead of need, by command, with their commands already started (waiting on
   * stdin for their step). On a long path a further step then costs one round trip, not three.
   */
  private readonly spares = new Map<string, Array<{ channel: Promise<ClientChannel | ChannelOpenError>; closed: boolean }>>()
  /** Set once the server refused a channel opened ahead: it limits sessions (MaxSessions); open on demand. */
  private sparesRefused = false

  /** Opens exec channels for `command` until `count` wait unused. Never rejects. */
  prefetch(command: string, count: number): void {
    if (this.sparesRefused || this.lost) return
    const list = this.spares.get(command) ?? []
    this.spares.set(command, list)
    while (list.length < count) {
      const spare: { closed: boolean; channel: Promise<ClientChannel | ChannelOpenError> } = {
        closed: false,
        channel: this.exec(command).then(
          (ch) => {
            // Unused, it must not leave an unhandled error; closed by the server, it is no use.
            ch.on('error', () => {})
            ch.on('close', () => (spare.closed = true))
            return ch
          },
          (err: ChannelOpenError) => {
            if (err.refused) this.sparesRefused = true
            return err
          }
        )
      }
      list.push(spare)
    }
  }

  /** A channel for `command` opened ahead, if one is there and still open; undefined otherwise. */
  takeSpare(command: string): Promise<ClientChannel | ChannelOpenError> | undefined {
    const list = this.spares.get(command)
    for (let spare = list?.shift(); spare; spare = list?.shift()) if (!spare.closed) return spare.channel
    return undefined
  }

  /** Opens an SFTP session on this connection. Rejects with ChannelOpenError. */
  sftp(): Promise<SFTPWrapper> {
    return this.channel((cb) => this.client.sftp(cb))
  }

  /** Ends the connection; a peer that does not answer is cut after a second. */
  close(): void {
    this.markLost('closed')
    this.client.end()
    // Cleared at close, so the timer does not hold a closed client (and its buffers) for that second.
    const cut = setTimeout(() => this.client.destroy(), 1000).unref()
    this.client.once('close', () => clearTimeout(cut))
  }
}

/** What one attempt may be given beside the options. */
export interface AttemptOptions {
  /** The byte stream to the host (a bastion's channel, a proxy command); undefined: TCP. */
  sock?: Duplex
  /** Aborted when the job is cancelled. */
  signal?: AbortSignal
  /** A shorter limit for this attempt than the host's connect timeout (a reboot's poll). */
  maxTimeoutMs?: number
}

/**
 * One connection attempt. The host's own settings (its ssh config's IdentityFile, ConnectTimeout,
 * ServerAlive*) apply over `runOptions` here, so every caller (connect, a reboot's polls) gets them.
 * Resolves with the connection or the classified failure; never rejects.
 */
export function connectOnce(
  host: Host,
  runOptions: ConnectOptions,
  { sock, signal, maxTimeoutMs = Infinity }: AttemptOptions = {}
): Promise<{ connection: Connection } | { failure: ConnectFailure }> {
  const options = { ...runOptions, ...host.overrides }
  const timeoutMs = Math.min(options.connectTimeoutMs, maxTimeoutMs)
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve({ failure: CANCELLED })
    const client = new Client()
    let refusal: string | undefined
    let firstError: SshError | undefined
    let settled = false
    const onCancel = (): void => settle({ failure: CANCELLED })
    signal?.addEventListener('abort', onCancel, { once: true })
    const settle = (value: { connection: Connection } | { failure: ConnectFailure }): void => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onCancel)
      if ('failure' in value) client.destroy()
      resolve(value)
    }
    const trail = new AuthTrail()
    const to = destination(host, sock !== undefined)
    const classify = (err: SshError): ConnectFailure => {
      const failure = classifyConnectError(err, timeoutMs, to)
      return failure.kind === 'auth'
        ? { ...failure, message: `authentication failed: ${trail.describe(host.user, host.hostname)}` }
        : failure
    }
    const connection = new Connection(client, {
      intervalMs: options.keepaliveIntervalMs,
      countMax: options.keepaliveCountMax
    })
    connection.forwardAgent = options.forwardAgent === true && options.auth.agent !== undefined
    connection.legacyHops = (sock as RouteStream | undefined)?.legacyHops ?? []
    client.on('error', (err: SshError) => {
      firstError ??= err
      if (refusal !== undefined) settle({ failure: { kind: 'host-key', transient: false, message: `host key refused: ${refusal}` } })
      else settle({ failure: classify(err) })
    })
    client.on('close', () => {
      settle({
        failure: firstError
          ? classify(firstError)
          : { kind: 'network', transient: true, message: `connection to ${to} closed before login completed` }
      })
    })
    client.on('ready', () => settle({ connection }))
    client.on('handshake', (negotiated: { kex: string; serverHostKey: string; cs: { cipher: string; mac?: string } }) => {
      connection.legacy = [negotiated.kex, negotiated.serverHostKey, negotiated.cs.cipher, negotiated.cs.mac].filter((n): n is string =>
        isLegacy(n)
      )
    })
    const config: ConnectConfig = {
      host: host.hostname,
      port: host.port,
      sock: sock as ConnectConfig['sock'],
      username: host.user,
      authHandler: authHandler(client, host.user, options.auth, trail),
      readyTimeout: timeoutMs,
      keepaliveInterval: options.keepaliveIntervalMs,
      keepaliveCountMax: options.keepaliveCountMax,
      algorithms: algorithms(options, host),
      ...(options.forwardAgent && options.auth.agent ? { agentForward: true, agent: options.auth.agent } : {}),
      hostVerifier: (key: Buffer) => {
        const verdict = verifyHostKey(options.hostKeys, host, key)
        if (verdict.accepted) connection.hostKey = verdict.via
        else refusal = verdict.reason
        return verdict.accepted
      }
    }
    try {
      client.connect(config)
      // ssh2 leaves Nagle's algorithm on; with delayed ACKs every handshake round trip and every
      // small channel message then waits ~40 ms. OpenSSH sets TCP_NODELAY too.
      client.setNoDelay(true)
    } catch (err) {
      settle({ failure: { kind: 'protocol', transient: false, message: (err as Error).message } })
    }
  })
}

export interface ConnectResult {
  connection?: Connection
  failure?: ConnectFailure
  attempts: number
  /** Failures that were retried, in order, for the warning annotation. */
  retried: ConnectFailure[]
}

export interface ConnectDeps {
  sleep?: Sleep
  random?: () => number
  /** Shared by every host of the run, so handshakes towards one address adapt to its throttling. */
  gates?: HandshakeGates
  onRetry?: (failure: ConnectFailure, retry: number, delayMs: number) => void
  /** Opens the byte stream to the host along its route (bastions, proxy command); undefined: TCP. */
  tunnel?: (host: Host) => Promise<Duplex | ConnectFailure | undefined>
  /** Aborted when the job is cancelled: no new attempt starts, the one in progress is dropped. */
  signal?: AbortSignal
}

/** Connects with retries of transient failures: exponential backoff, full jitter, 1 s base, 30 s cap. */
export async function connect(host: Host, options: ConnectOptions, deps: ConnectDeps = {}): Promise<ConnectResult> {
  const retried: ConnectFailure[] = []
  const gate = deps.gates?.for(host.hostname.toLowerCase())
  const attempt = async (): Promise<{ connection: Connection } | { failure: ConnectFailure }> => {
    const sock = deps.tunnel ? await deps.tunnel(host) : undefined
    if (sock && 'kind' in sock) return { failure: sock }
    await gate?.acquire()
    const outcome = await connectOnce(host, options, { sock, signal: deps.signal })
    gate?.release('connection' in outcome ? 'ok' : outcome.failure.kind === 'lost-before-handshake' ? 'throttled' : 'other')
    return outcome
  }
  const { outcome, attempts } = await withRetries(attempt, {
    retries: options.connectRetries,
    retryable: (o) => 'failure' in o && o.failure.transient && !deps.signal?.aborted,
    delayMs: (retry) => backoffDelay(retry, 1000, 30_000, deps.random),
    sleep: cancellableSleep(deps.signal, deps.sleep),
    onRetry: (o, retry, delayMs) => {
      if (!('failure' in o)) return
      retried.push(o.failure)
      deps.onRetry?.(o.failure, retry, delayMs)
    }
  })
  return 'connection' in outcome ? { connection: outcome.connection, attempts, retried } : { failure: outcome.failure, attempts, retried }
}
