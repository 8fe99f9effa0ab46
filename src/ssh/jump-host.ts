import type { Duplex } from 'node:stream'
import { connect, type ConnectDeps, type ConnectFailure, type ConnectOptions, type Connection } from './connection'
import type { Host, ProxyJump } from '../plan/settings'

/** SSH_OPEN_ADMINISTRATIVELY_PROHIBITED, the reason code of a channel the server will not open. */
const OPEN_ADMINISTRATIVELY_PROHIBITED = 1

/**
 * The bastion of `proxy-jump`: one connection, shared by every host, each host's SSH connection
 * carried in a direct-tcpip channel of it. The bastion gets the same host key check, keepalive and
 * connect retries as any host, and is connected again when it drops.
 */
export class JumpHost {
  private connecting?: Promise<Connection | ConnectFailure>

  constructor(
    private readonly jump: ProxyJump,
    private readonly options: ConnectOptions,
    private readonly deps: Omit<ConnectDeps, 'tunnel'> = {},
    /** Told of each new bastion connection, with what accepted its host key. */
    private readonly onConnected: (message: string) => void = () => {}
  ) {}

  /** The live bastion connection, connecting (again) when there is none. */
  private async bastion(): Promise<Connection | ConnectFailure> {
    const pending = this.connecting
    const current = await pending
    if (current && !('kind' in current) && current.lostReason === undefined) return current
    // Hosts that waited on the same attempt share one new attempt rather than each starting one.
    if (this.connecting === pending) {
      this.connecting = connect(this.jump.host, { ...this.options, auth: this.jump.auth }, this.deps).then(
        (r) => {
          if (r.connection) this.onConnected(`bastion ${this.jump.host.name}: connected; ${r.connection.hostKey}`)
          return r.connection ?? (r.failure as ConnectFailure)
        }
      )
    }
    return this.connecting as Promise<Connection | ConnectFailure>
  }

  /** A stream to `host` through the bastion, or why there is none. */
  async tunnel(host: Host): Promise<Duplex | ConnectFailure> {
    const bastion = await this.bastion()
    if ('kind' in bastion) {
      return { ...bastion, message: `bastion ${this.jump.host.name}: ${bastion.message}` }
    }
    return new Promise((resolve) => {
      const fail = (why: string, transient = true): void =>
        resolve({ kind: 'network', transient, message: `bastion ${this.jump.host.name} could not reach ${host.hostname}:${host.port}: ${why}` })
      const refused = (err: Error & { reason?: number }): void => {
        // RFC 4254 5.1: 1 is administratively prohibited, a refusal that no retry changes.
        if (err.reason === OPEN_ADMINISTRATIVELY_PROHIBITED) {
          fail('the bastion refused to forward (administratively prohibited): AllowTcpForwarding is off there, or PermitOpen excludes this host', false)
        } else {
          fail(err.message)
        }
      }
      try {
        bastion.client.forwardOut('127.0.0.1', 0, host.hostname, host.port, (err, stream) => (err ? refused(err) : resolve(stream)))
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
