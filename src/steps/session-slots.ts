import { ChannelOpenError } from '../ssh/connection'

/**
 * sshd frees a closed session in a later turn of its loop than the one that reads our CLOSE: an open
 * sent right after ours closed can still be refused (OpenSSH 9.2 at its MaxSessions: most uploads of
 * a few files hit it). Waits before trying again, doubling: 20 ms to 640 ms, 1.3 s in all.
 */
const FREED_WAITS_MS = [20, 40, 80, 160, 320, 640]

/**
 * How many session channels of one upload are open at once: as many as its callers ask for, until
 * the server refuses one while another of ours is open (sshd's `MaxSessions`, 10 by default, 1 on
 * hardened hosts and appliances). From then on one at a time, each waiting for the one before to close.
 */
export class SessionSlots {
  private open = 0
  private oneAtATime = false
  private readonly waiting: Array<() => void> = []

  /** Opens a channel with `open` and runs `use` on it; its slot is free once `use` settles (the channel closed). */
  async with<C, T>(open: () => Promise<C>, use: (channel: C) => Promise<T>): Promise<T> {
    const channel = await this.acquire(open)
    try {
      return await use(channel)
    } finally {
      this.open--
      this.waiting.shift()?.()
    }
  }

  private async acquire<C>(open: () => Promise<C>): Promise<C> {
    let freed = 0
    for (;;) {
      if (this.oneAtATime && this.open > 0) {
        await new Promise<void>((resolve) => this.waiting.push(resolve))
        continue
      }
      this.open++
      try {
        return await open()
      } catch (err) {
        this.open--
        const refused = err instanceof ChannelOpenError && err.refused
        if (refused) this.oneAtATime = true
        // Refused while one of ours is open: the server's limit, not a fault; wait for ours to close.
        if (refused && this.open > 0) continue
        // Refused with none of ours open: the one that just closed may not be freed yet.
        if (refused && freed < FREED_WAITS_MS.length) {
          await new Promise((resolve) => setTimeout(resolve, FREED_WAITS_MS[freed++]))
          continue
        }
        this.waiting.shift()?.()
        throw err
      }
    }
  }
}
