import type { AnyAuthMethod, AuthHandlerMiddleware, Client, ParsedKey } from 'ssh2'
import { describeKey } from './host-keys'
import type { Auth } from '../plan/settings'

/** What one connection attempt offered the server, and what the server said it accepts. */
export class AuthTrail {
  readonly offered: string[] = []
  /** The methods the server listed in its last refusal; undefined until it refused one. */
  serverAccepts?: string[]

  /** `deploy@web1: publickey ssh-ed25519 SHA256:… refused; server accepts: publickey,password`. */
  describe(user: string, host: string): string {
    const offered = this.offered.length ? `${[...new Set(this.offered)].join(', ')} refused` : 'no method the server accepts was configured'
    const accepts = this.serverAccepts ? `; server accepts: ${this.serverAccepts.join(',') || 'nothing'}` : ''
    return `${user}@${host}: ${offered}${accepts}`
  }
}

/** One method to offer: what ssh2 gets, and what a failure message calls it. */
interface Offer {
  method: AnyAuthMethod
  offered: string
  /** The RSA key's SHA-512 variant, when this is the second try of an RSA key. */
  sha512?: ParsedKey
}

/** What a method offers, as the message names it. */
function keyText(key: ParsedKey): string {
  const { type, fingerprint } = describeKey(key.getPublicSSH())
  return `${type} ${fingerprint}`
}

/**
 * ssh2 1.17 signs RSA user keys with rsa-sha2-256 whenever the server lists it, and never tries
 * rsa-sha2-512, so a server that accepts only the latter refuses the key. This key signs with
 * SHA-512, and `offerAs512` makes ssh2's protocol name the algorithm rsa-sha2-512 for it.
 */
function sha512Variant(key: ParsedKey): ParsedKey {
  return Object.create(key, { sign: { value: (data: Buffer) => key.sign(data, 'sha512') } }) as ParsedKey
}

type ProtocolInternals = { authPK(user: string, key: ParsedKey, keyAlgo: string | undefined, cb?: unknown): void }

function offerAs512(client: Client, variant: ParsedKey): void {
  const proto = (client as unknown as { _protocol: ProtocolInternals })._protocol
  const authPK = proto.authPK
  proto.authPK = function (user, key, keyAlgo, cb) {
    return authPK.call(this, user, key, key === variant ? 'rsa-sha2-512' : keyAlgo, cb)
  }
}

/**
 * The methods tried, in order: key (an RSA key again with rsa-sha2-512 when refused), agent,
 * password, keyboard-interactive. Methods the server does not list are skipped. Every offer goes
 * into `trail`, so an authentication failure can say what was refused.
 */
export function authHandler(client: Client, username: string, auth: Auth, trail: AuthTrail): AuthHandlerMiddleware {
  const queue: Offer[] = []
  const key = auth.privateKey
  if (key) {
    const offered = `publickey ${keyText(key)}`
    queue.push({ method: { type: 'publickey', username, key }, offered })
    if (key.type === 'ssh-rsa') {
      const sha512 = sha512Variant(key)
      queue.push({ method: { type: 'publickey', username, key: sha512 }, offered, sha512 })
    }
  }
  if (auth.agent) queue.push({ method: { type: 'agent', username, agent: auth.agent }, offered: 'the keys of the agent at SSH_AUTH_SOCK' })
  const password = auth.password
  if (password !== undefined) {
    queue.push({ method: { type: 'password', username, password }, offered: 'password' })
    queue.push({
      method: { type: 'keyboard-interactive', username, prompt: (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => password)) },
      offered: 'keyboard-interactive (password)'
    })
  }
  return (methodsLeft) => {
    if (methodsLeft) trail.serverAccepts = methodsLeft
    for (let next = queue.shift(); next; next = queue.shift()) {
      const wire = next.method.type === 'agent' ? 'publickey' : next.method.type
      if (methodsLeft && !methodsLeft.includes(wire)) continue
      if (next.sha512) offerAs512(client, next.sha512)
      trail.offered.push(next.offered)
      return next.method
    }
    return false
  }
}
