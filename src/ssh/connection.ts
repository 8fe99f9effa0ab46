/** One host's connection as the steps see it: the channels opened on it, some ahead of need, on one link at a time. */
import type { EventEmitter } from 'node:events'
import type { Client, ClientChannel, ExecOptions, PseudoTtyOptions, SFTPWrapper } from 'ssh2'
import type { LegacyHop } from './algorithms'
import type { ConnectFailure } from './connect-errors'
import type { Keepalive, Link } from './link'
import { backoffDelay, realSleep } from './retry'

/** A channel could not be opened; `refused` when the server said no (e.g. MaxSessions) on a live connection. */
export class ChannelOpenError extends Error {
  constructor(
    message: string,
    readonly refused: boolean
  ) {
    super(message)
  }
}

/**
 * CHANNEL_OPEN_FAILURE reasons (RFC 4254 5.1) for a session worth another try: 1, administratively
 * prohibited (tinysshd's second session), 2, connect failed (what OpenSSH sends past MaxSessions, with
 * "open failed"), and 4, resource shortage. Not 3, unknown channel type: that never changes.
 */
const RETRIED_REASONS = new Set([1, 2, 4])
/** A refused open is tried again this often, with backoff from 250 ms (full jitter, 4 s cap). */
const CHANNEL_RETRIES = 6
/**
 * A server that closes an idle connection this soon after a session on it ended closes after each
 * session: tinysshd closes 5-70 ms after the session's close here. Later, it is a connection dropped
 * for another cause (the tests kill sshd 300 ms after a step). Missed under load, the close still
 * costs nothing when an open is under way: that open goes to a new link.
 */
const SESSION_END_CLOSE_MS = 250

/** How a command on an exec channel ended, as the server reported it (RFC 4254 6.10). */
export interface CommandExit {
  code: number | null
  /** The signal's name as the host sent it (untrusted text); undefined when it exited with a code. */
  signal?: string
}

/** Each exec channel's exit, recorded from the moment ssh2 hands the channel over. */
const exits = new WeakMap<ClientChannel, CommandExit>()

/**
 * How the command of a channel from Connection#exec ended; undefined while it runs, or when the
 * server never said. Read this, not the channel's 'exit' event: a command that ends at once has its
 * exit status in the same read as the exec's reply, and ssh2 emits it before an awaiting caller can
 * listen.
 */
export function commandExit(channel: ClientChannel): CommandExit | undefined {
  return exits.get(channel)
}

/** What a host's server was seen to allow; learned on one connection, kept for the host's next ones. */
export class SessionLimits {
  /** It refused a channel opened ahead (MaxSessions 1, tinysshd): none are opened ahead. */
  oneAtATime = false
  /** It closes the connection when a session ends (tinysshd, many appliances): each session gets a link of its own. */
  closesAfterSession = false
}

/** One host's connection, reused by every step of that host. */
export class Connection {
  /** What accepted the host's key, e.g. `host key ssh-ed25519 SHA256:… accepted by known-hosts line 2`. */
  hostKey = ''
  /** The key exchange the handshake settled on, e.g. `mlkem768x25519-sha256`. */
  keyExchange = ''
  /** The legacy algorithms (`legacy-algorithms`) the handshake settled on, if any. */
  legacy: string[] = []
  /** The hops of its route (bastions) that settled on legacy algorithms. */
  legacyHops: LegacyHop[] = []
  /** Forward the runner's agent on every exec channel (`forward-agent`). */
  forwardAgent = false
  /** What the host's server allows; the host runner shares one between the host's connections. */
  limits = new SessionLimits()
  /**
   * Opens a new link to the host (`why`: undefined when it is the server's one session per connection).
   * Unset (bastions, a reboot's polls), a link that ends is the connection lost.
   */
  redial?: (why: string | undefined) => Promise<Connection | ConnectFailure>
  private link!: Link
  private redialing?: Promise<Link>
  /** Channel opens under way (backoff included): a link that ends meanwhile is replaced for them. */
  private opens = 0
  private lost?: string
  private readonly lostWaiters = new Set<(reason: string) => void>()

  constructor(link: Link) {
    this.adopt(link)
  }

  /** The ssh2 client of the current link (a bastion forwards through it). */
  get client(): Client {
    return this.link.client
  }

  private adopt(link: Link): void {
    this.link = link
    link.onEnd = (reason) => this.linkEnded(link, reason)
  }

  /**
   * A link that ends with no channel open on it loses nothing when a new one can be had: the server
   * closes after each session, or an open was under way (nothing of it sent). Otherwise the
   * connection is lost.
   */
  private linkEnded(link: Link, reason: string): void {
    // Ended by our own close: it says nothing of the server.
    if (link !== this.link || this.lost !== undefined) return
    if (link.idle && link.sessionsEnded > 0 && Date.now() - link.lastSessionEnd < SESSION_END_CLOSE_MS)
      this.limits.closesAfterSession = true
    if (link.idle && this.redial && (this.limits.closesAfterSession || this.opens > 0)) return
    this.markLost(reason)
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

  /** Keepalive at `keepalive` on the connection from now on, whatever the host's own (Link.watch). */
  watch(keepalive: Keepalive): void {
    this.link.watch(keepalive)
  }

  /** Lost after the host had gone silent: since about when (Link.silentSince). */
  get silentSince(): number | undefined {
    return this.link.silentSince
  }

  /** Why the connection is gone, or undefined while it is up. */
  get lostReason(): string | undefined {
    return this.lost
  }

  /** The link for the next channel: the current one, or a new one when it is spent. */
  private usableLink(): Promise<Link> {
    if (this.lost !== undefined) return Promise.reject(new ChannelOpenError(this.lost, false))
    const link = this.link
    const spent = link.ended !== undefined || link.halfOpen || (this.limits.closesAfterSession && link.idle && link.sessionsEnded > 0)
    if (!spent || !this.redial) return Promise.resolve(link)
    // Opens waiting at the same time share one new link.
    this.redialing ??= this.replace(link).finally(() => (this.redialing = undefined))
    return this.redialing
  }

  private async replace(old: Link): Promise<Link> {
    const why = old.ended === undefined || this.limits.closesAfterSession ? undefined : old.ended
    old.onEnd = () => {}
    old.retire()
    const fresh = await (this.redial as NonNullable<Connection['redial']>)(why)
    if (!(fresh instanceof Connection)) {
      const reason = `could not reconnect: ${fresh.message}`
      this.markLost(reason)
      throw new ChannelOpenError(reason, false)
    }
    this.adopt(fresh.link)
    return fresh.link
  }

  /**
   * Opens a channel with ssh2's `start`, the one way every channel is opened. A refusal
   * (RETRIED_REASONS) is tried again with backoff unless `once`; a link that ends during the open
   * (nothing sent on the channel yet) is replaced and the open made there. Rejects with
   * ChannelOpenError: `refused` when the server answered CHANNEL_OPEN_FAILURE on a live connection.
   */
  private async channel<T extends EventEmitter>(
    start: (client: Client, cb: (err: Error | undefined, channel: T) => void) => void,
    once = false
  ): Promise<T> {
    this.opens++
    try {
      return await this.openOnLinks(start, once)
    } finally {
      this.opens--
    }
  }

  private async openOnLinks<T extends EventEmitter>(
    start: (client: Client, cb: (err: Error | undefined, channel: T) => void) => void,
    once: boolean
  ): Promise<T> {
    let refusals = 0
    let relinked = false
    for (;;) {
      const link = await this.usableLink()
      const opened = await link.openChannel(start)
      if ('channel' in opened) return opened.channel
      const { err } = opened
      if (link.ended !== undefined) {
        // One new link per open: a host whose links keep ending under opens is lost.
        if (this.lost === undefined && this.redial && !relinked) {
          relinked = true
          continue
        }
        throw new ChannelOpenError(this.lost ?? link.ended, false)
      }
      if (typeof err.reason !== 'number') throw new ChannelOpenError(err.message, false)
      if (once || !RETRIED_REASONS.has(err.reason) || refusals === CHANNEL_RETRIES)
        throw new ChannelOpenError(`channel refused by the server: ${err.message} (MaxSessions?)`, true)
      await realSleep(backoffDelay(++refusals, 250, 4000))
    }
  }

  /** Opens an exec channel, on a pty when `pty` is given (a refusal retried unless `once`). Rejects with ChannelOpenError. */
  exec(command: string, once = false, pty?: PseudoTtyOptions): Promise<ClientChannel> {
    // ssh2 takes agentForward on exec (its types do not list it): the channel asks for the agent first.
    const options = { ...(this.forwardAgent ? { agentForward: true } : {}), ...(pty ? { pty } : {}) } as ExecOptions
    return this.channel<ClientChannel>(
      (client, cb) =>
        client.exec(command, options, (err, channel) => {
          if (!err)
            channel.once('exit', (code: number | null, signal?: string) =>
              exits.set(channel, { code: code ?? null, ...(signal === undefined || signal === null ? {} : { signal }) })
            )
          cb(err, channel)
        }),
      once
    )
  }

  /**
   * Exec channels opened ahead of need, by command, with their commands already started (waiting on
   * stdin for their step). On a long path a further step then costs one round trip, not three.
   */
  private readonly spares = new Map<string, Array<{ channel: Promise<ClientChannel | ChannelOpenError>; closed: boolean }>>()

  /** A spare's key: its command, and whether it has a pty. */
  private static spareKey(command: string, pty?: PseudoTtyOptions): string {
    return `${pty ? 'pty' : 'pipe'} ${command}`
  }

  /**
   * Opens exec channels for `command` (on a pty when `pty` is given) until `count` wait unused, where
   * the server allows more than one session. Never rejects.
   */
  prefetch(command: string, count: number, pty?: PseudoTtyOptions): void {
    if (this.limits.oneAtATime || this.limits.closesAfterSession || this.lost) return
    const key = Connection.spareKey(command, pty)
    const list = this.spares.get(key) ?? []
    this.spares.set(key, list)
    while (list.length < count) {
      const spare: { closed: boolean; channel: Promise<ClientChannel | ChannelOpenError> } = {
        closed: false,
        // Not retried: a refused one tells the server allows one session at a time.
        channel: this.exec(command, true, pty).then(
          (ch) => {
            // Unused, it must not leave an unhandled error; closed by the server, it is no use.
            ch.on('error', () => {})
            ch.on('close', () => (spare.closed = true))
            return ch
          },
          (err: ChannelOpenError) => {
            if (err.refused) this.limits.oneAtATime = true
            return err
          }
        )
      }
      list.push(spare)
    }
  }

  /** A channel for `command` (with a pty or not) opened ahead, if one is there and still open; undefined otherwise. */
  takeSpare(command: string, pty?: PseudoTtyOptions): Promise<ClientChannel | ChannelOpenError> | undefined {
    const list = this.spares.get(Connection.spareKey(command, pty))
    for (let spare = list?.shift(); spare; spare = list?.shift()) if (!spare.closed) return spare.channel
    return undefined
  }

  /** Runs `send`, its writes to the host handed to the transport together (Link#coalesced). */
  coalesced<T>(send: () => T): T {
    return this.link.coalesced(send)
  }

  /** Opens an SFTP session on this connection. Rejects with ChannelOpenError. */
  sftp(): Promise<SFTPWrapper> {
    return this.channel<SFTPWrapper>((client, cb) => client.sftp(cb))
  }

  /** Ends the connection; a peer that does not answer is cut after a second. */
  close(): void {
    this.markLost('closed')
    this.link.close()
  }
}
