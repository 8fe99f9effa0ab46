/** Connecting to a host: each attempt's failure classified, transient ones retried with backoff. */
import { connect as tcpConnect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { Client, type ConnectConfig } from 'ssh2'
import { algorithms, isLegacy, type LegacyHop } from './algorithms'
import { AuthTrail, authHandler } from './auth'
import {
  CANCELLED,
  classifyClose,
  classifyConnectError,
  destination,
  NO_STAGE,
  type AttemptStage,
  type ConnectFailure,
  type SshError
} from './connect-errors'
import { Connection } from './connection'
import { Link } from './link'
import type { HandshakeGates, HandshakeOutcome } from './handshake-gate'
import { verifyHostKey } from './host-keys'
import { backoffDelay, cancellableSleep, withRetries, type Sleep } from './retry'
import type { Host, Settings } from '../plan/settings'

export type ConnectOptions = Pick<
  Settings,
  'auth' | 'hostKeys' | 'connectTimeoutMs' | 'connectRetries' | 'keepaliveIntervalMs' | 'keepaliveCountMax'
> &
  Partial<Pick<Settings, 'forwardAgent' | 'legacyAlgorithms'>>

/** A stream to a host along its route; `legacyHops` names the hops on the way that use legacy algorithms. */
export type RouteStream = Duplex & { legacyHops?: LegacyHop[] }

/** What one attempt may be given beside the options. */
export interface AttemptOptions {
  /** The byte stream to the host (a bastion's channel, a proxy command); undefined: TCP. */
  sock?: Duplex
  /** A TCP connection to the host already open (a reboot's knock that connected), used instead of dialling. */
  tcp?: Socket
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
  { sock, tcp, signal, maxTimeoutMs = Infinity }: AttemptOptions = {}
): Promise<{ connection: Connection } | { failure: ConnectFailure }> {
  const options = { ...runOptions, ...host.overrides }
  const timeoutMs = Math.min(options.connectTimeoutMs, maxTimeoutMs)
  return new Promise((resolve) => {
    if (signal?.aborted) {
      tcp?.destroy()
      return resolve({ failure: CANCELLED })
    }
    const client = new Client()
    const stage: AttemptStage = { ...NO_STAGE }
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
      const failure = classifyConnectError(err, timeoutMs, to, { ...stage, offers: trail.requests })
      return failure.kind === 'auth' ? { ...failure, message: `${failure.message}: ${trail.describe(host.user, host.hostname)}` } : failure
    }
    // The TCP socket is ours, not ssh2's: the keepalive hears every byte on it, as on a route's stream,
    // and the server's bytes before its banner can be read (ssh2 keeps them to itself).
    const transport = sock ?? tcp ?? tcpConnect({ host: host.hostname, port: host.port })
    const connection = new Connection(
      new Link(client, transport, { intervalMs: options.keepaliveIntervalMs, countMax: options.keepaliveCountMax })
    )
    connection.forwardAgent = options.forwardAgent === true && options.auth.agent !== undefined
    connection.legacyHops = (sock as RouteStream | undefined)?.legacyHops ?? []
    client.on('error', (err: SshError) => {
      firstError ??= err
      if (refusal !== undefined) settle({ failure: { kind: 'host-key', transient: false, message: `host key refused: ${refusal}` } })
      else settle({ failure: classify(err) })
    })
    client.on('close', () => settle({ failure: firstError ? classify(firstError) : classifyClose(stage, to) }))
    client.on('ready', () => settle({ connection }))
    client.on('connect', () => (stage.connected = true))
    client.on('handshake', (negotiated: { kex: string; serverHostKey: string; cs: { cipher: string; mac?: string } }) => {
      stage.kex = true
      connection.keyExchange = negotiated.kex
      connection.legacy = [negotiated.kex, negotiated.serverHostKey, negotiated.cs.cipher, negotiated.cs.mac].filter((n): n is string =>
        isLegacy(n)
      )
    })
    const config: ConnectConfig = {
      host: host.hostname,
      port: host.port,
      sock: transport as ConnectConfig['sock'],
      username: host.user,
      authHandler: authHandler(client, host.user, options.auth, trail),
      readyTimeout: timeoutMs,
      // Off: the link keeps the connection alive (ssh2's takes tinysshd's UNIMPLEMENTED for silence).
      keepaliveInterval: 0,
      algorithms: algorithms(options, host),
      ...(options.forwardAgent && options.auth.agent ? { agentForward: true, agent: options.auth.agent } : {}),
      hostVerifier: (key: Buffer) => {
        const verdict = verifyHostKey(options.hostKeys, host, key, { legacy: options.legacyAlgorithms })
        if (verdict.accepted) connection.hostKey = verdict.via
        else refusal = verdict.reason
        return verdict.accepted
      }
    }
    try {
      client.connect(config)
      watchBanner(transport, stage)
      // ssh2 leaves Nagle's algorithm on; with delayed ACKs every handshake round trip and every
      // small channel message then waits ~40 ms. OpenSSH sets TCP_NODELAY too.
      client.setNoDelay(true)
    } catch (err) {
      transport.destroy()
      settle({ failure: { kind: 'protocol', transient: false, message: (err as Error).message } })
    }
  })
}

/** The most bytes read for the banner: RFC 4253 4.2 allows lines before it, each up to 255 bytes. */
const BANNER_WATCH_BYTES = 8192

/**
 * Reads the server's first bytes beside ssh2 (after ssh2 paused the stream, so nothing is lost to
 * either): whether its `SSH-` banner line came, and the text before it.
 */
function watchBanner(stream: Duplex, stage: AttemptStage): void {
  let seen = ''
  const onData = (chunk: Buffer): void => {
    seen += chunk.toString('latin1', 0, Math.min(chunk.length, BANNER_WATCH_BYTES - seen.length))
    const at = seen.startsWith('SSH-') ? 0 : seen.indexOf('\nSSH-') + 1
    stage.banner = at > 0 || seen.startsWith('SSH-')
    stage.serverText = stage.banner ? seen.slice(0, at) : seen
    if (stage.banner || seen.length >= BANNER_WATCH_BYTES) stream.removeListener('data', onData)
  }
  stream.on('data', onData)
}

/** How an attempt's outcome tells the address's gate about congestion. */
function gateOutcome(outcome: { connection: Connection } | { failure: ConnectFailure }): HandshakeOutcome {
  if ('connection' in outcome) return 'ok'
  const { kind } = outcome.failure
  if (kind === 'turned-away') return 'turned-away'
  // Dropped before the banner, or left before login: sshd counts both against the address.
  return kind === 'lost-before-handshake' || kind === 'stalled' ? 'congested' : 'other'
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
  const gate = await deps.gates?.forHost(host)
  const attempt = async (): Promise<{ connection: Connection } | { failure: ConnectFailure }> => {
    for (;;) {
      const sock = deps.tunnel ? await deps.tunnel(host) : undefined
      if (sock && 'kind' in sock) return { failure: sock }
      const ticket = await gate?.acquire()
      const outcome = await connectOnce(host, options, { sock, signal: deps.signal })
      // Turned away by a paused address: wait for the pause (the gate bounds it) instead of spending a retry.
      const paused =
        gate !== undefined &&
        ticket !== undefined &&
        gate.release(ticket, gateOutcome(outcome), 'failure' in outcome ? outcome.failure.message : '')
      if (!paused || deps.signal?.aborted) return outcome
    }
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
