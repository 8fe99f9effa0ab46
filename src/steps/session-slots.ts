import { ChannelOpenError } from '../ssh/connection'

/**
 * How many session channels of one upload are open at once: as many as its callers ask for, until
 * the server refuses one while another of ours is open (sshd's `MaxSessions`, 10 by default, 1 on
 * hardened hosts and appliances). From then on one at a time, each waiting for the one before to close.
 * Retries of a refused open are the connection's (ssh/connection.ts): an open made while another of
 * ours is open is made once, so a refusal there tells the limit at once instead of after its backoff.
 */
export class SessionSlots {
  private open = 0
  private oneAtATime = false
  private readonly waiting: Array<() => void> = []

  /**
   * Opens a channel with `open` (`once`: no retry of a refusal) and runs `use` on it; its slot is
   * free once `use` settles (the channel closed).
   */
  async with<C, T>(open: (once: boolean) => Promise<C>, use: (channel: C) => Promise<T>): Promise<T> {
    const channel = await this.acquire(open)
    try {
      return await use(channel)
    } finally {
      this.open--
      this.waiting.shift()?.()
    }
  }

  private async acquire<C>(open: (once: boolean) => Promise<C>): Promise<C> {
    for (;;) {
      if (this.oneAtATime && this.open > 0) {
        await new Promise<void>((resolve) => this.waiting.push(resolve))
        continue
      }
      const alongside = this.open > 0
      this.open++
      try {
        return await open(alongside)
      } catch (err) {
        this.open--
        // Refused while one of ours is open: the server's limit, not a fault; wait for ours to close.
        if (err instanceof ChannelOpenError && err.refused && alongside) {
          this.oneAtATime = true
          continue
        }
        this.waiting.shift()?.()
        throw err
      }
    }
  }
}
