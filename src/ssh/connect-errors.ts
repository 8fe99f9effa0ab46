/** Connection failures classified by ssh2's error level (the socket's code within it), never by message text. */
import { clipText } from '../base/bounded'
import type { Host } from '../plan/settings'

/** Why a connection could not be made; `transient` ones are worth retrying. */
export interface ConnectFailure {
  kind: 'host-key' | 'auth' | 'timeout' | 'refused' | 'lost-before-handshake' | 'network' | 'protocol' | 'cancelled'
  transient: boolean
  message: string
  /** The bastion of a proxy-jump route where it failed (its label, which the message starts with). */
  hop?: string
}

export type SshError = Error & { level?: string; code?: string | number }

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
export const CANCELLED: ConnectFailure = {
  kind: 'cancelled',
  transient: false,
  message: 'cancelled (the job was cancelled) before the connection was made'
}
