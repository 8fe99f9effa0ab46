/**
 * A TCP proxy on 127.0.0.1 in front of a real sshd, for the network faults a real server cannot be
 * made to show on cue: a NAT that kills idle connections, a path that black-holes a live connection,
 * connections cut at random points, and a long path (a delay on every chunk, for the benchmark).
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

export interface ProxyOptions {
  /** Close a connection after this long without bytes in either direction (an idle-killing NAT). */
  idleKillMs?: number
  /** This long after a connection is accepted, stop forwarding and drop its bytes; sockets stay open. */
  blackholeAfterMs?: number
  /** Destroy each connection after a random delay below this (a fault loop). */
  cutWithinMs?: number
  /** Random source for cutWithinMs, seedable for a reproducible loop. */
  random?: () => number
  /** Destroy a connection once this many bytes went from client to server (mid-upload). */
  cutAfterBytes?: number
  /** Only the first N connections get cutAfterBytes (so a retry can get through). */
  cutConnections?: number
  /** Delay every chunk this long, each way (a long path: the round trip is twice this). */
  delayMs?: number
}

export interface Proxy {
  port: number
  /** Connections accepted so far. */
  accepted: number
  close(): Promise<void>
}

export async function startProxy(targetPort: number, options: ProxyOptions = {}, listenPort = 0): Promise<Proxy> {
  const sockets = new Set<Socket>()
  const random = options.random ?? Math.random
  const state = { accepted: 0 }
  const server: Server = createServer((client) => {
    state.accepted++
    const upstream = connect(targetPort, '127.0.0.1')
    const pair = [client, upstream]
    pair.forEach((s) => {
      s.setNoDelay(true) // a relay must not add Nagle's waits to the path it stands for
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        // A close travels the path like the bytes before it.
        setTimeout(() => pair.forEach((o) => o.destroy()), options.delayMs ?? 0)
      })
    })
    let blackholed = false
    let idle: NodeJS.Timeout | undefined
    const touch = (): void => {
      if (options.idleKillMs === undefined) return
      clearTimeout(idle)
      idle = setTimeout(() => pair.forEach((s) => s.destroy()), options.idleKillMs)
    }
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk) => {
        if (blackholed) return
        touch()
        if (options.delayMs) setTimeout(() => to.write(chunk), options.delayMs)
        else to.write(chunk)
      })
    }
    let sent = 0
    const cuts = options.cutAfterBytes !== undefined && state.accepted <= (options.cutConnections ?? Infinity)
    if (cuts) {
      client.on('data', (chunk: Buffer) => {
        sent += chunk.length
        if (sent >= (options.cutAfterBytes as number)) pair.forEach((s) => s.destroy())
      })
    }
    forward(client, upstream)
    forward(upstream, client)
    touch()
    if (options.blackholeAfterMs !== undefined) setTimeout(() => (blackholed = true), options.blackholeAfterMs)
    if (options.cutWithinMs !== undefined) setTimeout(() => pair.forEach((s) => s.destroy()), random() * options.cutWithinMs)
    client.on('close', () => clearTimeout(idle))
  })
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    get accepted() {
      return state.accepted
    },
    close: async () => {
      sockets.forEach((s) => s.destroy())
      await new Promise((r) => server.close(r))
    }
  }
}

/** A small seeded PRNG (mulberry32), so a fault loop can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
