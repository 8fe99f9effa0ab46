/**
 * A hostile SSH server on ssh2's Server, for what no real sshd does on cue (floods, crafted texts).
 * It takes any login and hands each session to `onSession`.
 */
import { createServer, type Server as NetServer } from 'node:net'
import type { Session } from 'ssh2'

export interface Ssh2Server {
  port: number
  /** A known-hosts line for it. */
  known: string
  close(): void
}

export async function startSsh2Server(onSession: (session: Session) => void): Promise<Ssh2Server> {
  const { Server, utils } = await import('ssh2')
  const { generateKey } = await import('../../demo/fleet.js')
  const hostKey = generateKey()
  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    client.on('error', () => {})
    client.on('authentication', (ctx) => ctx.accept())
    client.on('session', (accept) => onSession(accept()))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  const pub = utils.parseKey(hostKey.public) as import('ssh2').ParsedKey
  return { port, known: `[127.0.0.1]:${port} ${pub.type} ${pub.getPublicSSH().toString('base64')}`, close: () => server.close() }
}

/**
 * A raw TCP server that sends its ident, then an SSH DISCONNECT carrying `text`, before any key
 * exchange (no real sshd sends a crafted DISCONNECT on cue).
 */
export function disconnectingServer(text: string): Promise<NetServer> {
  const field = (s: string): Buffer => {
    const b = Buffer.from(s)
    const len = Buffer.alloc(4)
    len.writeUInt32BE(b.length)
    return Buffer.concat([len, b])
  }
  const payload = Buffer.concat([Buffer.from([1, 0, 0, 0, 2]), field(text), field('')]) // SSH_MSG_DISCONNECT, protocol error
  let pad = 8 - ((5 + payload.length) % 8)
  if (pad < 4) pad += 8
  const packet = Buffer.alloc(5 + payload.length + pad)
  packet.writeUInt32BE(1 + payload.length + pad, 0)
  packet[4] = pad
  payload.copy(packet, 5)
  const server = createServer((socket) => {
    socket.on('error', () => {})
    socket.write('SSH-2.0-Evil_1.0\r\n')
    socket.once('data', () => {
      socket.write(packet)
      setTimeout(() => socket.end(), 50)
    })
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}
