/**
 * A user certificate whose private key only the runner's agent holds (ssh_config(5): a CertificateFile's
 * key may come from ssh-agent), offered as an agent of its own: it lists the certificate when the agent
 * holds the key it certifies, and has that agent sign with the plain key. An OpenSSH agent signs only
 * for a key it holds, and it holds the plain key, not this certificate.
 */
import { BaseAgent, createAgent, type ParsedKey, type SigningRequestOptions } from 'ssh2'

type SignCallback = (err: Error | undefined, signature?: Buffer) => void

export class CertificateAgent extends BaseAgent<ParsedKey> {
  private readonly agent: BaseAgent
  private plain?: ParsedKey

  /** `certificate`: the certificate read as a key (its public half); `publicKey`: the key it certifies. */
  constructor(
    socket: string,
    private readonly certificate: ParsedKey,
    private readonly publicKey: Buffer
  ) {
    super()
    this.agent = createAgent(socket)
  }

  getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    this.agent.getIdentities((err, keys) => {
      if (err) return cb(err)
      this.plain = (keys as ParsedKey[] | undefined)?.find((k) => k.getPublicSSH().equals(this.publicKey))
      cb(undefined, this.plain ? [this.certificate] : [])
    })
  }

  sign(_key: ParsedKey, data: Buffer, options: SigningRequestOptions | SignCallback, cb?: SignCallback): void {
    const done = (typeof options === 'function' ? options : cb) as SignCallback
    const opts = typeof options === 'function' ? {} : (options ?? {})
    if (!this.plain) return done(new Error("the agent does not hold the certificate's key"))
    this.agent.sign(this.plain, data, opts, done as never)
  }
}
