/**
 * A hostile SSH server on ssh2's Server, for what no real sshd does on cue (floods, crafted texts).
 * It takes any login and hands each session to `onSession`.
 */
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
