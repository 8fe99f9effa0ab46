import { describe, expect, test } from 'vitest'
import { EventEmitter } from 'node:events'
import { PassThrough } from 'node:stream'
import type { Client } from 'ssh2'
import { Connection } from '../../src/ssh/connection'
import { Link } from '../../src/ssh/link'

describe('Connection.onLost', () => {
  // A stand-in for ssh2's Client: the link only listens to its 'error', 'close' and 'ready' events.
  const connection = (): { conn: Connection; client: EventEmitter } => {
    const client = new EventEmitter()
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
