import type { ClientChannel } from 'ssh2'

type ChannelInternals = {
  outgoing: { id: number; state: string }
  _client: { _protocol: { signal(id: number, name: string): void } }
}

/**
 * ssh2 1.17's channel.signal() is a silent no-op once stdin has been ended (it wants outgoing state
 * 'open'), yet SSH allows a signal after EOF (RFC 4254 6.9) and sshd delivers it to the session's
 * process group. We always end stdin at once, so send the request through the protocol ourselves.
 * The step timeout integration test fails if this stops reaching the remote process.
 */
export function sendSignal(channel: ClientChannel, name: string): void {
  const ch = channel as unknown as ChannelInternals
  if (ch.outgoing.state === 'open' || ch.outgoing.state === 'eof') ch._client._protocol.signal(ch.outgoing.id, name)
}
