import type { Duplex } from 'node:stream'
import type { Host } from '../plan/settings'
import type { ConnectDeps, ConnectOptions } from './connect'
import type { ConnectFailure } from './connect-errors'
import { JumpHost } from './jump-host'
import { ProxyCommands } from './proxy-command'

/**
 * Opens the byte stream to each host along its route: through its chain of bastions (each hop one
 * shared connection, reused by every host and every chain that starts the same way), or through its
 * proxy command (one process per connection). Direct hosts get no stream (plain TCP).
 */
export class Router {
  /** JumpHosts by the chain of hops that leads to them (`a`, `a,b`, …). */
  private readonly hops = new Map<string, JumpHost>()
  private readonly proxies = new ProxyCommands()

  constructor(
    private readonly options: ConnectOptions,
    private readonly deps: Omit<ConnectDeps, 'tunnel'>,
    /** A line for the log: a hop's host key trust, or a proxy command's stderr (with its host). */
    private readonly note: (host: Host | undefined, message: string) => void
  ) {}

  /** The last JumpHost of a chain, creating the hops on the way. */
  private chain(route: Extract<Host['route'], { via: 'jump' }>): JumpHost {
    let previous: JumpHost | undefined
    route.hops.forEach((hop, i) => {
      const key = route.hops
        .slice(0, i + 1)
        .map((h) => `${h.host.user}@${h.host.hostname}:${h.host.port}`)
        .join(',')
      let jump = this.hops.get(key)
      if (!jump) {
        const through = previous
        // A hop after the first is reached through the ones before it: its route says so (its gate's key, its errors).
        const reached = i === 0 ? hop : { ...hop, host: { ...hop.host, route: { via: 'jump' as const, hops: route.hops.slice(0, i) } } }
        jump = new JumpHost(
          reached,
          this.options,
          { ...this.deps, tunnel: through ? (h) => through.tunnel(h) : undefined },
          (m) => this.note(undefined, m),
          { index: i + 1, of: route.hops.length }
        )
        this.hops.set(key, jump)
      }
      previous = jump
    })
    return previous as JumpHost
  }

  /** The stream to `host` along its route, why there is none, or undefined for plain TCP. */
  readonly tunnel = async (host: Host): Promise<Duplex | ConnectFailure | undefined> => {
    const route = host.route
    if (!route) return undefined
    if (route.via === 'command') return this.proxies.open(route.command, host, (line) => this.note(host, `proxy command: ${line}`))
    return this.chain(route).tunnel(host)
  }

  /** Closes every bastion connection and kills every proxy command still alive. */
  async close(): Promise<void> {
    this.proxies.close()
    await Promise.all([...this.hops.values()].map((j) => j.close()))
  }
}
