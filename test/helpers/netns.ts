/**
 * A network namespace joined to this one by a veth pair: a test host at `inner` that this machine
 * reaches only over the veth, with a loopback of its own that nothing outside can reach.
 * Root only. Removed again by `remove()` (the veth goes with the namespace).
 */
import { execFileSync } from 'node:child_process'

export interface Netns {
  name: string
  /** The namespace's address on the veth. */
  inner: string
  /** Takes the namespace's side of the veth down or up: down, it drops everything without a word. */
  link(up: boolean): void
  /**
   * Drops every TCP connection the namespace's kernel still holds (`ss -K`), as a rebooted machine's
   * new kernel has none: with the link down, nothing of it reaches the peers (no FIN retried later).
   */
  forgetConnections(): void
  remove(): void
}

const ip = (...args: string[]): void => {
  execFileSync('ip', args, { stdio: 'pipe' })
}

let created = 0

export function createNetns(): Netns {
  const seq = created++
  const id = (process.pid + seq) % 250
  const tag = `${process.pid % 100000}x${seq}`
  const name = `sshfleet-${tag}`
  const outside = `sfa${tag}`
  const inside = `sfb${tag}`
  const [outer, inner] = [`10.231.${id}.1`, `10.231.${id}.2`]
  ip('netns', 'add', name)
  try {
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside)
    ip('link', 'set', inside, 'netns', name)
    ip('addr', 'add', `${outer}/30`, 'dev', outside)
    ip('link', 'set', outside, 'up')
    ip('netns', 'exec', name, 'ip', 'addr', 'add', `${inner}/30`, 'dev', inside)
    ip('netns', 'exec', name, 'ip', 'link', 'set', inside, 'up')
    ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up')
  } catch (err) {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' })
    throw err
  }
  return {
    name,
    inner,
    link: (up) => ip('netns', 'exec', name, 'ip', 'link', 'set', inside, up ? 'up' : 'down'),
    forgetConnections: () => ip('netns', 'exec', name, 'ss', '-K', '-t', 'state', 'all'),
    remove: () => {
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' })
      } catch {
        // already gone
      }
    }
  }
}
