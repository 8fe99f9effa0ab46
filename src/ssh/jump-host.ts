import { connect, type ConnectDeps, type ConnectOptions, type RouteStream } from './connect'
import type { ConnectFailure } from './connect-errors'
import type { Connection } from './connection'
import { keyExchangeNote } from './algorithms'
import type { Host, ProxyJump } from '../plan/settings'

/** SSH_OPEN_ADMINISTRATIVELY_PROHIBITED, the reason code of a channel the server will not open. */
const OPEN_ADMINISTRATIVELY_PROHIBITED = 1

/**
 * A bastion of `proxy-jump`: one connection, shared by every host behind it, each host's (or the
 * next hop's) SSH connection carried in a direct-tcpip channel of it. It gets the same host key
 * check, keepalive and connect retries as any host, and is connected again when it drops. In a chain
 * its own connection goes through the hop before it (`deps.tunnel`).
 */
export class JumpHost {
  private connecting?: Promise<Connection | ConnectFailure>
  /** How messages name it: `bastion deploy@a`, or `hop 2 of 3 (deploy@b)` in a chain. */
  readonly label: string

  constructor(
    private readonly jump: ProxyJump,
    private readonly options: ConnectOptions,
    private readonly deps: ConnectDeps = {},
    /** Told of each new bastion connection, with what accepted its host key. */
    private readonly onConnected: (message: string) => void = () => {},
    hop?: { index: number; of: number }
  ) {
    this.label = hop && hop.of > 1 ? `hop ${hop.index} of ${hop.of} (${jump.host.name})` : `bastion ${jump.host.name}`
  }

  /** The live bastion connection, connecting (again) when there is none. */
  private async bastion(): Promise<Connection | ConnectFailure> {
    const pending = this.connecting
    const current = await pending
    if (current && !('kind' in current) && current.lostReason === undefined) return current
    // Hosts that waited on the same attempt share one new attempt rather than each starting one.
    if (this.connecting === pending) {
      this.connecting = connect(this.jump.host, { ...this.options, auth: this.jump.auth }, this.deps).then((r) => {
        if (r.connection) this.onConnected(`${this.label}: connected; ${r.connection.hostKey}${keyExchangeNote(r.connection.keyExchange)}`)
        return r.connection ?? (r.failure as ConnectFailure)
      })
    }
    return this.connecting as Promise<Connection | ConnectFailure>
  }

  /**
   * A stream to `host` through the bastion, or why there is none. The stream names the hops on the
   * way that settled on legacy algorithms (this one, and those before it), for the host's warning.
   */
  async tunnel(host: Host): Promise<RouteStream | ConnectFailure> {
    const bastion = await this.bastion()
    if ('kind' in bastion) {
      // A failure further up the chain already names its hop.
      return bastion.hop ? bastion : { ...bastion, hop: this.label, message: `${this.label}: ${bastion.message}` }
    }
    return new Promise((resolve) => {
      const fail = (why: string, transient = true): void =>
        resolve({
          kind: 'network',
          transient,
          hop: this.label,
          message: `${this.label} could not reach ${host.hostname}:${host.port}: ${why}`
        })
      const refused = (err: Error & { reason?: number }): void => {
        // RFC 4254 5.1: 1 is administratively prohibited, a refusal that no retry changes.
        if (err.reason === OPEN_ADMINISTRATIVELY_PROHIBITED) {
          fail(
            'the bastion refused to forward (administratively prohibited): AllowTcpForwarding is off there, or PermitOpen excludes this host',
            false
          )
        } else {
          fail(err.message)
        }
      }
      try {
        const legacyHops = [...bastion.legacyHops, ...(bastion.legacy.length ? [{ hop: this.label, algorithms: bastion.legacy }] : [])]
        bastion.client.forwardOut('127.0.0.1', 0, host.hostname, host.port, (err, stream) =>
          err ? refused(err) : resolve(Object.assign(stream, { legacyHops }))
        )
      } catch (err) {
        fail((err as Error).message)
      }
    })
  }

  async close(): Promise<void> {
    const current = await this.connecting
    if (current && !('kind' in current)) current.close()
  }
}
