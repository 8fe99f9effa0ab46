import type { AnyAuthMethod, AuthHandlerMiddleware, Client, ParsedKey } from 'ssh2'
import { VALID_FOREVER, certificateIdentity, certificateTime, principalsText } from '../base/ssh-certificate'
import { describeKey } from '../plan/known-hosts'
import { CertificateAgent } from './certificate-agent'
import type { Auth } from '../plan/settings'

/** What the trail calls the agent before its keys are known. */
const AGENT_OFFER = 'the keys of the agent at SSH_AUTH_SOCK'
/** The most agent keys a message names (an agent may hold many); the rest are counted. */
const AGENT_KEYS_NAMED = 8

/** What one connection attempt offered the server, and what the server said it accepts. */
export class AuthTrail {
  readonly offered: string[] = []
  /** The agent's keys offered, each as `type fingerprint`, in order. */
  readonly agentKeys: string[] = []
  /** The methods the server listed in its last refusal; undefined until it refused one. */
  serverAccepts?: string[]
  /** Offers the server accepted while requiring more (partial success: `AuthenticationMethods publickey,password`). */
  readonly accepted: string[] = []

  /**
   * `deploy@web1: publickey ssh-ed25519 SHA256:… refused; server accepts: publickey,password`, or, when
   * a method was accepted and another one is required, `publickey … accepted, but the server requires
   * another method as well (partial success); server accepts: password`.
   */
  describe(user: string, host: string): string {
    const named = this.agentKeys.slice(0, AGENT_KEYS_NAMED)
    const more = this.agentKeys.length - named.length
    const agent = this.agentKeys.length
      ? `the agent's keys (publickey ${named.join(', ')}${more > 0 ? ` and ${more} more` : ''})`
      : AGENT_OFFER
    const refused = [...new Set(this.offered.map((o) => (o === AGENT_OFFER ? agent : o)))].filter((o) => !this.accepted.includes(o))
    const parts = [
      ...(this.accepted.length
        ? [`${this.accepted.join(', ')} accepted, but the server requires another method as well (partial success)`]
        : []),
      ...(refused.length ? [`${refused.join(', ')} refused`] : []),
      ...(this.offered.length ? [] : ['no method the server accepts was configured'])
    ]
    const accepts = this.serverAccepts ? `; server accepts: ${this.serverAccepts.join(',') || 'nothing'}` : ''
    return `${user}@${host}: ${parts.join('; ')}${accepts}`
  }

  /** Authentication requests sent: each key (an RSA key's second algorithm, each agent key) counts, as sshd counts them. */
  get requests(): number {
    return this.offered.filter((o) => o !== AGENT_OFFER).length + this.agentKeys.length
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

type SignCallback = (data: Buffer, done: (signature: Buffer) => void) => void
type ProtocolInternals = { authPK(user: string, key: ParsedKey, keyAlgo: string | undefined, cb?: SignCallback): void }

/** The hash an RSA signature algorithm names; other key types have one of their own. */
const RSA_HASH: Record<string, string> = { 'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256', 'ssh-rsa': 'sha1' }
/** The hash `algo` signs with: a certificate's (`rsa-sha2-512-cert-v01@openssh.com`) is its plain algorithm's. */
const hashOf = (algo: string | undefined): string | undefined => RSA_HASH[(algo ?? '').replace(/-cert-v01@openssh\.com$/, '')]

/**
 * Wraps ssh2's protocol (its authPK, as ssh2 1.17 has it). Every key it offers that is not one of
 * `keys` is an agent's, recorded in `trail`. For this connection's own keys, `keys`:
 * - ssh2 first asks whether the server would accept a key and signs only after it says yes: a
 *   round trip. A key in memory signs at once (an agent's keys are still asked about first: an
 *   agent may want a touch or a confirmation for each signature). The server answers the signed
 *   request as it would the one after its yes; a refusal goes on as before.
 * - the SHA-512 variant of an RSA key is offered as rsa-sha2-512.
 */
function wrapAuthPK(client: Client, trail: AuthTrail, keys: ParsedKey[], variant?: ParsedKey): void {
  const proto = (client as unknown as { _protocol?: ProtocolInternals })._protocol
  if (typeof proto?.authPK !== 'function') return
  const authPK = proto.authPK
  proto.authPK = function (user, key, keyAlgo, cb) {
    const algo = key === variant ? 'rsa-sha2-512' : keyAlgo
    // ssh2 asks about an agent key first (no callback), then signs with it once the server says yes.
    if (!keys.includes(key) && !cb) trail.agentKeys.push(keyText(key))
    if (cb || !keys.includes(key)) return authPK.call(this, user, key, algo, cb)
    authPK.call(this, user, key, algo, (data, done) => {
      const signature = key.sign(data, hashOf(algo))
      // A key that cannot sign is left to ssh2's own path (ask first, then sign), which reports it.
      if (signature instanceof Error) authPK.call(this, user, key, algo)
      else done(signature)
    })
  }
}

/**
 * The methods tried, in order: the key's certificate, key (an RSA key again with rsa-sha2-512 when refused), agent,
 * password, keyboard-interactive. Methods the server does not list are skipped. Every offer goes
 * into `trail`, so an authentication failure can say what was refused.
 */
export function authHandler(client: Client, username: string, auth: Auth, trail: AuthTrail): AuthHandlerMiddleware {
  const queue: Offer[] = []
  const key = auth.privateKey
  const certificate = auth.certificate
  // The certificate first, then its plain key, as OpenSSH offers them.
  if (certificate) {
    const { cert } = certificate
    // Its end is named: a short-lived certificate may run out during a long rollout, and a reconnection
    // (a reboot, a retry) is then refused for that.
    const until = cert.validBefore === VALID_FOREVER ? 'no expiry' : `expires ${certificateTime(cert.validBefore)}`
    const from = `from ${certificate.origin}${certificate.agent ? ', signed by the agent' : ''}`
    const offered = `publickey ${cert.certType} ${describeKey(cert.publicKey).fingerprint} (${certificateIdentity(cert)}, ${principalsText(cert)}, ${until}, ${from})`
    // A certificate whose key only the agent holds goes as an agent of its own, listing just it.
    if (certificate.agent && auth.agent) {
      const agent = new CertificateAgent(auth.agent, certificate.key, cert.publicKey)
      queue.push({ method: { type: 'agent', username, agent }, offered })
    } else if (!certificate.agent) queue.push({ method: { type: 'publickey', username, key: certificate.key }, offered })
  }
  if (key) {
    const offered = `publickey ${keyText(key)}`
    queue.push({ method: { type: 'publickey', username, key }, offered })
    if (key.type === 'ssh-rsa') {
      const sha512 = sha512Variant(key)
      queue.push({ method: { type: 'publickey', username, key: sha512 }, offered, sha512 })
    }
  }
  if (auth.agent) queue.push({ method: { type: 'agent', username, agent: auth.agent }, offered: AGENT_OFFER })
  const password = auth.password
  if (password !== undefined) {
    queue.push({ method: { type: 'password', username, password }, offered: 'password' })
    queue.push({
      method: {
        type: 'keyboard-interactive',
        username,
        prompt: (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => password))
      },
      offered: 'keyboard-interactive (password)'
    })
  }
  let wrapped = false
  let last: string | undefined
  return (methodsLeft, partialSuccess) => {
    if (methodsLeft) trail.serverAccepts = methodsLeft
    // ssh2 says the last offer was accepted, and the server wants another method too.
    if (partialSuccess && last !== undefined && !trail.accepted.includes(last)) trail.accepted.push(last)
    for (let next = queue.shift(); next; next = queue.shift()) {
      const wire = next.method.type === 'agent' ? 'publickey' : next.method.type
      if (methodsLeft && !methodsLeft.includes(wire)) continue
      if (!wrapped) {
        wrapped = true
        const variant = queue.find((o) => o.sha512)?.sha512 ?? next.sha512
        const own = [...(certificate && !certificate.agent ? [certificate.key] : []), ...(key ? [key] : []), ...(variant ? [variant] : [])]
        wrapAuthPK(client, trail, own, variant)
      }
      trail.offered.push(next.offered)
      last = next.offered
      return next.method
    }
    return false
  }
}
