/**
 * Caps the handshakes in progress towards one server address. sshd's MaxStartups drops new
 * connections while too many are unauthenticated, and PerSourcePenalties (OpenSSH ≥ 9.8) refuses an
 * address for a while once its connections failed or were left before login, so a fleet behind one
 * address (ports on one machine, a load balancer, a NAT) must not storm it. Like TCP congestion
 * control: the cap starts at sshd's own threshold and grows by one per success until the first sign
 * of congestion, then halves on each one and grows by one per cap's worth of successes. An address
 * that turns even a lone handshake away is paused for escalating spells, then probed with one.
 */
import { lookup } from 'node:dns/promises'
import type { Host } from '../plan/settings'
import { cancellableSleep, realSleep, type Sleep } from './retry'

/** The first cap: sshd's MaxStartups starts dropping past 10 unauthenticated connections (default 10:30:100). */
export const START_CAP = 10
/**
 * How long an address that turns a lone handshake away is paused, spell after spell. OpenSSH's
 * penalties (PerSourcePenalties: 5 s per failed login, 1 s per connection left before login,
 * enforced from 15 s) lasted 23–79 s from a fleet here; the spells reach that in four.
 */
export const PAUSES_MS = [5_000, 10_000, 20_000, 40_000, 60_000]
/**
 * The most one address is paused in all (over twice the longest penalty seen, 79 s; sshd's ceiling,
 * max:600s, is for repeat offenders). Past it its hosts spend their retries, and fail with the server's words.
 */
export const PAUSE_TOTAL_MS = 180_000

/** What became of one handshake, as the gate adapts to it. */
export type HandshakeOutcome = 'ok' | 'congested' | 'turned-away' | 'other'

/** A slot in the gate; `alone` when no other handshake to the address was in flight as it started. */
export interface Ticket {
  alone: boolean
}

export interface GateOptions {
  /** The most handshakes at once (the run's concurrency). */
  max: number
  sleep?: Sleep
  /** The job's cancel: a pause ends at once. */
  signal?: AbortSignal
  /** Told of each pause as it begins, and of the failure that began it. */
  onPause?: (ms: number, why: string) => void
}

export class HandshakeGate {
  private active = 0
  private limit: number
  /** Growing by one per success (until the first congestion), else by one per cap of them. */
  private slowStart = true
  private readonly waiting: Array<(ticket: Ticket) => void> = []
  /** Set while the address is paused. */
  private pause?: Promise<void>
  private spells = 0
  private pausedMs = 0

  constructor(private readonly options: GateOptions) {
    this.limit = Math.min(START_CAP, options.max)
  }

  /** Handshakes allowed at once now. */
  get cap(): number {
    return Math.floor(this.limit)
  }

  /** Whether the address is paused now. */
  get paused(): boolean {
    return this.pause !== undefined
  }

  /** Waits for a slot (and for a pause to end); every acquire must be followed by one release. */
  acquire(): Promise<Ticket> {
    return new Promise((resolve) => {
      this.waiting.push(resolve)
      this.admit()
    })
  }

  /**
   * Frees the slot and adapts: `ok` grows the cap, `congested` halves it, `turned-away` halves it or,
   * for a lone handshake, pauses the address. Returns whether the address is paused: an attempt turned
   * away or dropped (congested) by a paused address is not one of its host's retries (the host waits
   * for the pause instead). `why` (the failure's message) is told with a pause.
   */
  release(ticket: Ticket, outcome: HandshakeOutcome, why = ''): boolean {
    this.active--
    if (outcome === 'ok') {
      this.spells = 0
      this.limit = Math.min(this.options.max, this.limit + (this.slowStart ? 1 : 1 / this.cap))
    } else if (outcome === 'congested') {
      this.halve()
    } else if (outcome === 'turned-away' && !this.pause) {
      // A lone handshake turned away: not our own crowd but the address itself is refused.
      if (ticket.alone) this.pauseAddress(why)
      else this.halve()
    }
    this.admit()
    return (outcome === 'turned-away' || outcome === 'congested') && this.paused
  }

  private halve(): void {
    this.slowStart = false
    this.limit = Math.max(1, Math.floor(this.limit / 2))
  }

  private pauseAddress(why: string): void {
    const ms = Math.min(PAUSES_MS[Math.min(this.spells, PAUSES_MS.length - 1)], PAUSE_TOTAL_MS - this.pausedMs)
    this.halve()
    if (ms <= 0) return
    this.spells++
    this.pausedMs += ms
    // One probe after the pause.
    this.limit = 1
    this.options.onPause?.(ms, why)
    this.pause = cancellableSleep(
      this.options.signal,
      this.options.sleep ?? realSleep
    )(ms).then(() => {
      this.pause = undefined
      this.admit()
    })
  }

  private admit(): void {
    while (!this.pause && this.active < this.cap && this.waiting.length > 0) {
      const alone = this.active === 0
      this.active++
      ;(this.waiting.shift() as (ticket: Ticket) => void)({ alone })
    }
  }
}

/** A name to the address the runner dials for it (the system resolver, as `net.connect` asks it). */
export type Resolve = (hostname: string) => Promise<string>

const systemResolve: Resolve = async (hostname) => (await lookup(hostname)).address

/**
 * One gate per server, all with the same options. A server is keyed by what it sees of a connection
 * (serverKey): two names for one machine, or hosts behind one bastion on one target, share a gate.
 */
export class HandshakeGates {
  private readonly gates = new Map<string, HandshakeGate>()
  /** Names the runner dials, resolved once per run. */
  private readonly addresses = new Map<string, Promise<string>>()
  private readonly resolve: Resolve

  constructor(
    private readonly options: Omit<GateOptions, 'onPause'> & {
      onPause?: (address: string, ms: number, why: string) => void
      resolve?: Resolve
    }
  ) {
    this.resolve = options.resolve ?? systemResolve
  }

  for(address: string): HandshakeGate {
    let gate = this.gates.get(address)
    if (!gate) {
      const { onPause } = this.options
      gate = new HandshakeGate({ ...this.options, onPause: onPause && ((ms, why) => onPause(address, ms, why)) })
      this.gates.set(address, gate)
    }
    return gate
  }

  /** The gate of the server a connection to `host` reaches. */
  async forHost(host: Host): Promise<HandshakeGate> {
    return this.for(await this.serverKey(host))
  }

  /**
   * The server a connection to `host` reaches, as it sees it: its address, and where the connection
   * comes from when that is not the runner (the last bastion of the chain, or the proxy command).
   * Names the runner dials (the host, a chain's first bastion) are resolved; names a bastion or a
   * proxy command dials are theirs to resolve, and stay as written. Ports are left out: one sshd
   * serves all its ListenAddress ports from one process (MaxStartups and penalties count them
   * together), and servers on one address share whatever stands in front of them.
   */
  async serverKey(host: Host): Promise<string> {
    const route = host.route
    if (!route) return this.address(host.hostname)
    const target = host.hostname.toLowerCase()
    if (route.via === 'command') return `${target} through the proxy command ${route.command}`
    const last = route.hops[route.hops.length - 1].host.hostname
    return `${target} through ${route.hops.length === 1 ? await this.address(last) : last.toLowerCase()}`
  }

  /** `hostname` resolved (once), or as written (lower-cased) when it does not resolve: connecting will say why. */
  private address(hostname: string): Promise<string> {
    const name = hostname.toLowerCase()
    let address = this.addresses.get(name)
    if (!address) {
      address = this.resolve(name).then(
        (a) => a.toLowerCase(),
        () => name
      )
      this.addresses.set(name, address)
    }
    return address
  }
}
