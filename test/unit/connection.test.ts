import { describe, expect, test } from 'vitest'
import { EventEmitter } from 'node:events'
import { connect } from 'node:net'
import { PassThrough } from 'node:stream'
import { Client } from 'ssh2'
import { commandExit, Connection } from '../../src/ssh/connection'
import { Link } from '../../src/ssh/link'
import { startSsh2Server } from '../helpers/ssh2-server'

describe('Connection.onLost', () => {
  // A stand-in for ssh2's Client: the link only listens to its 'error', 'close' and 'ready' events.
  const connection = (): { conn: Connection; client: EventEmitter } => {
    const client = Object.assign(new EventEmitter(), { end: () => {}, destroy: () => {} })
    return { conn: new Connection(new Link(client as unknown as Client, new PassThrough(), { intervalMs: 1000, countMax: 3 })), client }
  }

  test('tells each listener the reason once; one that stopped listening hears nothing', () => {
    const { conn, client } = connection()
    const heard: string[] = []
    conn.onLost((r) => heard.push(`a: ${r}`))
    const stop = conn.onLost((r) => heard.push(`b: ${r}`))
    stop()
    client.emit('close')
    client.emit('error', Object.assign(new Error('later'), { level: 'client-socket' }))
    expect(heard).toEqual(['a: connection closed by the remote host'])
  })

  test('our own close right after a session ended teaches nothing about the server (not "closes after each session")', () => {
    const { conn } = connection()
    // A session that ended a moment ago: a close by the server now would mean it closes after each one.
    Object.assign(conn['link'], { sessionsEnded: 1, lastSessionEnd: Date.now() })
    conn.close()
    expect(conn.limits.closesAfterSession).toBe(false)
  })

  test('a listener added after the loss hears it soon, not during the call', async () => {
    const { conn, client } = connection()
    client.emit('close')
    const heard: string[] = []
    conn.onLost((r) => heard.push(r))
    expect(heard).toEqual([])
    await Promise.resolve()
    expect(heard).toEqual(['connection closed by the remote host'])
  })
})

describe('commandExit', () => {
  test("a command that ends at once: its exit status, read in the same chunk as the exec's reply, still reaches the caller", async () => {
    // ssh2's Server, in process: the test holds the client's socket while the server answers the exec
    // (reply, exit status, close), so all of it arrives in one read, as it does from a fast host under load.
    let hold: () => void = () => {}
    const server = await startSsh2Server((session) =>
      session.on('exec', (accept) => {
        hold()
        const channel = accept()
        channel.exit(0)
        channel.end()
      })
    )
    const sock = connect({ host: '127.0.0.1', port: server.port })
    const client = new Client()
    try {
      await new Promise<void>((resolve, reject) => {
        client.on('ready', resolve).on('error', reject)
        client.connect({ sock, username: 'u', hostVerifier: () => true })
      })
      const conn = new Connection(new Link(client, sock, { intervalMs: 0, countMax: 3 }))
      hold = () => {
        sock.pause()
        setTimeout(() => sock.resume(), 200)
      }
      const channel = await conn.exec('true')
      let heard: unknown
      channel.on('exit', (code: number) => (heard = code))
      channel.resume()
      await new Promise((resolve) => channel.on('close', resolve))
      // Too late for a listener added once the channel was handed over: what the upload's commands did.
      expect(heard).toBeUndefined()
      expect(commandExit(channel)).toEqual({ code: 0 })
    } finally {
      client.end()
      server.close()
    }
  })
})
