/**
 * Connection failures classified by ssh2's error level (the socket's code within it) and by how far the
 * attempt got (TCP, banner, key exchange, authentication), never by message text.
 */
import { clipText } from '../base/bounded'
import type { Host } from '../plan/settings'

/** Why a connection could not be made; `transient` ones are worth retrying. */
export interface ConnectFailure {
  kind:
    | 'host-key'
    | 'auth'
    | 'timeout'
    | 'stalled'
    | 'refused'
    | 'lost-before-handshake'
    | 'turned-away'
    | 'rejected'
    | 'network'
    | 'protocol'
    | 'cancelled'
  transient: boolean
  message: string
  /** The bastion of a proxy-jump route where it failed (its label, which the message starts with). */
  hop?: string
}

export type SshError = Error & { level?: string; code?: string | number }

/**
 * Kinds where the host answered and said no: its key was refused, the login failed, or it refused
 * the client after the key exchange (`RefuseConnection`). Such a host failed: it was reached, and
 * retrying will not change its answer. Every other failure left it unreachable.
 */
const ANSWERED_NO: ReadonlySet<ConnectFailure['kind']> = new Set(['host-key', 'auth', 'rejected'])

/** Whether the host answered and refused (ANSWERED_NO), rather than could not be reached. */
export function refusedByHost(failure: ConnectFailure): boolean {
  return ANSWERED_NO.has(failure.kind)
}

/** How far one attempt got: what happened decides a failure's kind, not the words the server used. */
export interface AttemptStage {
  /** The TCP connection (or the route's stream) was open: the server has a connection it will count. */
  connected: boolean
  /** The server's SSH banner (its `SSH-2.0-…` line) arrived. */
  banner: boolean
  /** Text the server wrote before its banner, or before closing without one (`Not allowed at this time`). */
  serverText: string
  /** The key exchange completed (ssh2's `handshake`). */
  kex: boolean
  /** Authentication methods offered so far. */
  offers: number
}

export const NO_STAGE: AttemptStage = { connected: false, banner: false, serverText: '', kex: false, offers: 0 }

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

/**
 * OpenSSH ≥ 9.8 writes the same line before closing for both causes, so neither can be told from it:
 * MaxStartups (too many unauthenticated connections at once) and PerSourcePenalties (this address
 * failed logins, or left connections without logging in, and is refused for a while).
 */
const TURNED_AWAY_HINT =
  "sshd MaxStartups or PerSourcePenalties (OpenSSH ≥ 9.8) refuses new connections from this runner's address; " +
  "on the server, add the runner's address to PerSourcePenaltyExemptList (or raise MaxStartups), or lower concurrency"

/** Where a connection to `host` goes, for its errors: the address, and the route when it was taken. */
export function destination(host: Host, routed: boolean): string {
  const address = host.hostname.includes(':') ? `[${host.hostname}]:${host.port}` : `${host.hostname}:${host.port}`
  const route = host.route
  if (!routed || !route) return address
  return `${address} through ${route.via === 'jump' ? route.hops.map((h) => h.host.name).join(' → ') : 'the proxy command'}`
}

/**
 * Classifies a connection failure by ssh2's error level, the socket error code and the attempt's
 * `stage`, never by message text. `to` (destination()) is named in the network failures' messages.
 */
export function classifyConnectError(raw: SshError, connectTimeoutMs: number, to?: string, stage: AttemptStage = NO_STAGE): ConnectFailure {
  const at = to ? ` to ${to}` : ''
  // A message may carry the server's own text (a DISCONNECT reason): held short and without control characters.
  const err = { level: raw.level, code: raw.code, message: clipText(raw.message, SERVER_TEXT_CHARS) }
  // Text and then a drop before the banner: the listener turned us away on purpose (OpenSSH ≥ 9.8:
  // MaxStartups or a penalty). It closes with our banner unread, so the drop reads as a reset as often
  // as an end (ssh2: ECONNRESET, or `protocol`), by timing alone: either way it is the same refusal.
  const dropped = err.level === 'protocol' || (err.level === 'client-socket' && err.code === 'ECONNRESET')
  if (dropped && !stage.banner && stage.serverText !== '')
    return {
      kind: 'turned-away',
      transient: true,
      message: `the server turned the connection away before its SSH banner${at}, saying "${clipText(stage.serverText.trim(), SERVER_TEXT_CHARS)}": ${TURNED_AWAY_HINT}`
    }
  switch (err.level) {
    case 'client-authentication':
    case 'agent':
      // The caller adds what was offered and refused (AuthTrail).
      return { kind: 'auth', transient: false, message: 'authentication failed' }
    case 'client-timeout':
      // The server holds a connection we now drop before login: sshd counts each one against this
      // address (PerSourcePenalties' noauth), so the handshake gate takes it as congestion.
      if (stage.connected)
        return {
          kind: 'stalled',
          transient: true,
          message: `connection${at} timed out after ${connectTimeoutMs / 1000}s: the server accepted the connection but ${
            !stage.banner ? 'sent no SSH banner' : !stage.kex ? 'did not complete the key exchange' : 'did not complete authentication'
          }`
        }
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
      // ssh2 raises this when the server drops the connection before its banner; sshd refusing
      // unauthenticated connections past MaxStartups without a word looks exactly like this.
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
      // During authentication it ends the login: sshd disconnects when MaxAuthTries offers failed.
      if (typeof err.code === 'number' && stage.kex && stage.offers > 0)
        return {
          kind: 'auth',
          transient: false,
          message: `authentication failed: the server ended it after ${stage.offers} offer${stage.offers === 1 ? '' : 's'} (reason ${err.code}: ${err.message}), as sshd does when MaxAuthTries (6 by default) offers failed; every key offered counts, an agent's included`
        }
      if (typeof err.code === 'number')
        return { kind: 'protocol', transient: false, message: `the server disconnected (reason ${err.code}): ${err.message}` }
      return { kind: 'protocol', transient: false, message: `SSH handshake failed: ${err.message}` }
  }
}

/**
 * The connection closed without an error. After the key exchange and before login, the server chose
 * to end it (OpenSSH's `RefuseConnection yes` does exactly that): a refusal, not a network fault.
 */
export function classifyClose(stage: AttemptStage, to: string): ConnectFailure {
  if (stage.kex)
    return {
      kind: 'rejected',
      transient: false,
      message: `the server closed the connection to ${to} after the key exchange, before login: it refuses this client (e.g. OpenSSH RefuseConnection, a Match block)`
    }
  return { kind: 'network', transient: true, message: `connection to ${to} closed before login completed` }
}

/** The job was cancelled before a connection could be made. */
export const CANCELLED: ConnectFailure = {
  kind: 'cancelled',
  transient: false,
  message: 'cancelled (the job was cancelled) before the connection was made'
}
