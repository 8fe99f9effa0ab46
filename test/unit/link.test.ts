import { afterAll, beforeAll, expect, test, vi } from 'vitest'
import { EventEmitter } from 'node:events'
import { connect } from 'node:net'
import { PassThrough } from 'node:stream'
import { Client } from 'ssh2'
import { Link, sendPing } from '../../src/ssh/link'
import { startSsh2Server, type Ssh2Server } from '../helpers/ssh2-server'

// ssh2's Server, in process: what is pinned is ssh2's client internals, not a server's behaviour.
let server: Ssh2Server
beforeAll(async () => (server = await startSsh2Server(() => {})))
afterAll(() => server.close())

test("sendPing uses ssh2's internal keepalive request: the server's reply comes back and takes the callback pushed for it", async () => {
  const sock = connect({ host: '127.0.0.1', port: server.port })
  const client = new Client()
  const internals = client as unknown as { _callbacks: unknown[] }
  await new Promise<void>((resolve, reject) => {
    client.on('ready', resolve).on('error', reject)
    client.connect({ sock, username: 'u', hostVerifier: () => true })
  })
  let heard = 0
  sock.on('data', () => heard++)
  sendPing(client)
  expect(internals._callbacks).toHaveLength(1)
  // ssh2's Server answers keepalive@openssh.com with REQUEST_FAILURE, which consumes the pushed callback.
  await expect.poll(() => internals._callbacks.length).toBe(0)
  expect(heard).toBeGreaterThan(0)
  client.end()
})

/** A client that only counts pings and closes: the Link's own timing is what is tested, on fake timers. */
function fakeLink(): { link: Link; transport: PassThrough; client: EventEmitter; pings: () => number } {
  let pings = 0
  const client = Object.assign(new EventEmitter(), {
    _callbacks: [] as unknown[],
    _protocol: { ping: () => pings++ },
    destroy: () => client.emit('close'),
    end: () => {}
  })
  const transport = new PassThrough()
  // keepalive-interval 0: off, as a host may have it; the reboot's watch turns it on regardless.
  const link = new Link(client as unknown as Client, transport, { intervalMs: 0, countMax: 3 })
  client.emit('ready')
  return { link, transport, client, pings: () => pings }
}

test('watch: a host silent for countMax + 1 intervals ends the link, silent since the last tick that heard it', () => {
  vi.useFakeTimers()
  try {
    const { link, transport, pings } = fakeLink()
    link.watch({ intervalMs: 2000, countMax: 5 })
    transport.emit('data', Buffer.from('x'))
    vi.advanceTimersByTime(2000) // heard
    const lastHeard = Date.now()
    vi.advanceTimersByTime(5 * 2000)
    expect(link.ended).toBeUndefined()
    expect(pings()).toBe(5)
    vi.advanceTimersByTime(2000)
    expect(link.ended).toMatch(/^host stopped answering keepalives \(5 unanswered at 2s intervals\)/)
    expect(link.silentSince).toBe(lastHeard)
  } finally {
    vi.useRealTimers()
  }
})

test('watch: a close while the host answers its keepalives is not a silence; a reset after one is', () => {
  vi.useFakeTimers()
  try {
    const answering = fakeLink()
    answering.link.watch({ intervalMs: 2000, countMax: 5 })
    vi.advanceTimersByTime(2000) // a ping goes out, and its answer comes
    answering.transport.emit('data', Buffer.from('x'))
    answering.client.emit('close')
    expect(answering.link.ended).toBe('connection closed by the remote host')
    expect(answering.link.silentSince).toBeUndefined()
    const gone = fakeLink()
    gone.link.watch({ intervalMs: 2000, countMax: 5 })
    const watched = Date.now()
    vi.advanceTimersByTime(3 * 2000) // pings unanswered; then the host is back and resets the connection
    gone.client.emit('error', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))
    expect(gone.link.ended).toBe('connection lost: ECONNRESET')
    expect(gone.link.silentSince).toBe(watched)
  } finally {
    vi.useRealTimers()
  }
})
