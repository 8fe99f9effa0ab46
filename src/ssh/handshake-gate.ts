/**
 * Caps the handshakes in progress towards one server address. sshd's MaxStartups drops new
 * connections while too many are unauthenticated, so a fleet behind one address (ports on one
 * machine, a load balancer, a NAT) that connects all at once mostly fails. Like TCP congestion
 * control, the cap halves on each throttled handshake and grows by one per cap's worth of successes,
 * so retries converge on what the server admits instead of storming it again.
 */
export class HandshakeGate {
  private active = 0
  private limit: number
  private readonly waiting: Array<() => void> = []

  constructor(private readonly max: number) {
    this.limit = max
  }

  /** Handshakes allowed at once now. */
  get cap(): number {
    return Math.floor(this.limit)
  }

  /** Waits for a slot; every acquire must be followed by one release. */
  acquire(): Promise<void> {
    if (this.active < this.cap) {
      this.active++
      return Promise.resolve()
    }
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  /** Frees the slot and adapts the cap: `throttled` halves it, `ok` grows it by 1/cap. */
  release(outcome: 'ok' | 'throttled' | 'other'): void {
    this.active--
    if (outcome === 'throttled') this.limit = Math.max(1, Math.floor(this.limit / 2))
    else if (outcome === 'ok') this.limit = Math.min(this.max, this.limit + 1 / this.cap)
    while (this.active < this.cap && this.waiting.length > 0) {
      this.active++
      ;(this.waiting.shift() as () => void)()
    }
  }
}

/** One gate per server address, all with the same maximum. */
export class HandshakeGates {
  private readonly gates = new Map<string, HandshakeGate>()

  constructor(private readonly max: number) {}

  for(address: string): HandshakeGate {
    let gate = this.gates.get(address)
    if (!gate) this.gates.set(address, (gate = new HandshakeGate(this.max)))
    return gate
  }
}
