/** One SSH transport to a host: an ssh2 client over its byte stream, our keepalive on it, and how it ended. */
import type { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { Client } from 'ssh2'
import type { SshError } from './connect-errors'

/** `keepalive-interval` (0: off) and `keepalive-count-max`. */
export interface Keepalive {
  intervalMs: number
  countMax: number
}

/** How long a peer that ended the cut takes to answer before the socket is destroyed. */
const CLOSE_WAIT_MS = 1000

/**
 * Sends OpenSSH's keepalive request (`keepalive@openssh.com`, want-reply) on `client`. ssh2 has no
 * public call for it: this is its internal Protocol#ping, with the no-op reply callback ssh2's own
 * keepalive pushes so its global-request replies keep their order. test/unit/link.test.ts pins both.
 */
export function sendPing(client: Client): void {
  const internals = client as unknown as { _protocol: { ping(): void }; _callbacks: Array<() => void> }
  internals._callbacks.push(() => {})
  internals._protocol.ping()
}

/**
 * One ssh2 client. Its keepalive is ours, not ssh2's: ssh2 counts only REQUEST_SUCCESS/FAILURE as
 * answers, while tinysshd answers the request with UNIMPLEMENTED; like OpenSSH's client, any byte
 * from the server is a sign of life here.
 */
export class Link {
  /** Why the link ended; undefined while it is up. */
  ended?: string
  /** Told once when the link ends. */
  onEnd: (reason: string) => void = () => {}
  /** Channels open on it. */
  private open = 0
  /** Sessions that ended on it, and when the last did (ms since the epoch). */
  sessionsEnded = 0
  lastSessionEnd = 0
  /**
   * A session opened whose request then failed (no SFTP subsystem): ssh2 neither closes it nor hands
   * it over, so it stays open on the server (tinysshd then refuses any other session on the link).
   */
  halfOpen = false
  /**
   * Ended after the host had gone silent (a keepalive request unanswered for a whole interval; the end
   * itself may be the count running out, or a reset once it is back): since about when, within an
   * interval (ms since the epoch).
   */
  silentSince?: number
  /** Replaced by a new link: it ends when its last channel closes. */
  private retired = false
  private timer?: NodeJS.Timeout
  /** Bytes came from the host since the last keepalive tick. Per inbound chunk only this flag is set. */
  private heard = false
  /** The last keepalive tick that found bytes heard, and the ticks since that found none. */
  private heardAt = Date.now()
  private unanswered = 0

  constructor(
    readonly client: Client,
    private readonly transport: Duplex,
    private keepalive: Keepalive
  ) {
    // Listeners stay for the client's whole life: ssh2 can emit errors after end(), and an
    // unhandled 'error' event would take the whole process down.
    client.on('error', (err: SshError) => this.end(`connection lost: ${err.code ?? err.message}`))
    client.on('close', () => this.end('connection closed by the remote host'))
    client.once('ready', () => this.startKeepalive())
    transport.on('data', () => (this.heard = true))
  }

  /**
   * Runs `send` with the transport's writes held, then hands them on together at the end of the tick
   * (one writev): a burst of SSH packets (a 255 KiB SFTP write is 8 of them) then costs one system call
   * and a few large TCP segments, not one call and one segment each.
   */
  coalesced<T>(send: () => T): T {
    this.transport.cork()
    try {
      return send()
    } finally {
      process.nextTick(() => this.transport.uncork())
    }
  }

  /** Whether no channel is open on it (opens under way aside). */
  get idle(): boolean {
    return this.open === 0
  }

  /**
   * From now on, keepalive at `keepalive` (whatever the host's own is, off included): a reboot command
   * watches its host this closely, so a host whose network went down first is not waited on for minutes.
   */
  watch(keepalive: Keepalive): void {
    this.keepalive = keepalive
    this.startKeepalive()
  }

  /**
   * Each interval: bytes heard since the last tick reset the count; otherwise a keepalive request is
   * sent, and past `countMax` unanswered ones the link ends, as ssh2's own keepalive would (within
   * interval × (countMax + 1) of silence).
   */
  private startKeepalive(): void {
    clearInterval(this.timer)
    const { intervalMs, countMax } = this.keepalive
    if (!(intervalMs > 0) || this.ended !== undefined) return
    this.heardAt = Date.now()
    this.unanswered = 0
    this.timer = setInterval(() => {
      if (this.heard) {
        this.heard = false
        this.heardAt = Date.now()
        this.unanswered = 0
      } else if (++this.unanswered > countMax) {
        this.end(
          `host stopped answering keepalives (${countMax} unanswered at ${intervalMs / 1000}s intervals): the host or the network path is down`
        )
        this.client.destroy()
      } else {
        sendPing(this.client)
      }
    }, intervalMs)
  }

  /** Opens a channel with ssh2's `start`; the channel, or ssh2's error. Never rejects. */
  openChannel<T extends EventEmitter>(
    start: (client: Client, cb: (err: Error | undefined, channel: T) => void) => void
  ): Promise<{ channel: T } | { err: Error & { reason?: unknown } }> {
    return new Promise((resolve) => {
      try {
        start(this.client, (err, channel) => {
          if (!err) {
            this.open++
            channel.once('close', () => {
              this.open--
              this.sessionsEnded++
              this.lastSessionEnd = Date.now()
              if (this.retired && this.open === 0) this.close()
            })
            return resolve({ channel })
          }
          if (typeof (err as { reason?: unknown }).reason !== 'number' && this.ended === undefined) this.halfOpen = true
          resolve({ err })
        })
      } catch (err) {
        resolve({ err: err as Error })
      }
    })
  }

  private end(reason: string): void {
    if (this.ended !== undefined) return
    this.ended = reason
    if (this.unanswered > 1) this.silentSince = this.heardAt
    clearInterval(this.timer)
    this.onEnd(reason)
  }

  /**
   * Ends the link once its open channels have closed: a link replaced for new channels (a half-open
   * session on it) still carries the commands started on it before, which must end as they would.
   */
  retire(): void {
    this.retired = true
    if (this.open === 0) this.close()
  }

  /** Ends the link; a peer that does not answer is cut after a second. */
  close(): void {
    this.end('closed')
    this.client.end()
    // Cleared at close, so the timer does not hold a closed client (and its buffers) for that second.
    const cut = setTimeout(() => this.client.destroy(), CLOSE_WAIT_MS).unref()
    this.client.once('close', () => clearTimeout(cut))
  }
}
