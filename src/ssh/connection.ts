/** One authenticated SSH connection to a host: the channels opened on it, some ahead of need. */
import type { Client, ClientChannel, ExecOptions, PseudoTtyOptions, SFTPWrapper } from 'ssh2'
import type { LegacyHop } from './algorithms'
import type { SshError } from './connect-errors'

/** A channel could not be opened; `refused` when the server said no (e.g. MaxSessions) on a live connection. */
export class ChannelOpenError extends Error {
  constructor(
    message: string,
    readonly refused: boolean
  ) {
    super(message)
  }
}

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

  /** Opens an exec channel, on a pty when `pty` is given. Rejects with ChannelOpenError. */
  exec(command: string, pty?: PseudoTtyOptions): Promise<ClientChannel> {
    // ssh2 takes agentForward on exec (its types do not list it): the channel asks for the agent first.
    const options = { ...(this.forwardAgent ? { agentForward: true } : {}), ...(pty ? { pty } : {}) } as ExecOptions
    return this.channel((cb) => this.client.exec(command, options, cb))
  }

  /**
   * Exec channels opened ahead of need, by command, with their commands already started (waiting on
   * stdin for their step). On a long path a further step then costs one round trip, not three.
   */
  private readonly spares = new Map<string, Array<{ channel: Promise<ClientChannel | ChannelOpenError>; closed: boolean }>>()
  /** Set once the server refused a channel opened ahead: it limits sessions (MaxSessions); open on demand. */
  private sparesRefused = false

  /** A spare's key: its command, and whether it has a pty. */
  private static spareKey(command: string, pty?: PseudoTtyOptions): string {
    return `${pty ? 'pty' : 'pipe'} ${command}`
  }

  /** Opens exec channels for `command` (on a pty when `pty` is given) until `count` wait unused. Never rejects. */
  prefetch(command: string, count: number, pty?: PseudoTtyOptions): void {
    if (this.sparesRefused || this.lost) return
    const key = Connection.spareKey(command, pty)
    const list = this.spares.get(key) ?? []
    this.spares.set(key, list)
    while (list.length < count) {
      const spare: { closed: boolean; channel: Promise<ClientChannel | ChannelOpenError> } = {
        closed: false,
        channel: this.exec(command, pty).then(
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

  /** A channel for `command` (with a pty or not) opened ahead, if one is there and still open; undefined otherwise. */
  takeSpare(command: string, pty?: PseudoTtyOptions): Promise<ClientChannel | ChannelOpenError> | undefined {
    const list = this.spares.get(Connection.spareKey(command, pty))
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
