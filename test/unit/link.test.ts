import { afterAll, beforeAll, expect, test } from 'vitest'
import { connect } from 'node:net'
import { Client } from 'ssh2'
import { sendPing } from '../../src/ssh/link'
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
