/**
 * A user certificate (the `certificate` input, a `-cert.pub` file from ssh-config) checked against its
 * private key before anything connects: unreadable, a host certificate, for another key, or outside
 * its validity window is an input error naming where it came from, not a refused login on every host.
 */
import { utils, type ParsedKey } from 'ssh2'
import {
  CertificateError,
  checkValidity,
  parseCertificateText,
  verifyCertificateSignature,
  validityText,
  type SshCertificate
} from '../base/ssh-certificate'
import { certifiedKey } from './certified-key'
import { InputError } from './input-error'
import type { UserCertificate } from './settings'

/** Where a certificate's private key is: in memory (private-key, an IdentityFile), or the agent's. */
export type CertificateKey = ParsedKey | 'agent'

/**
 * Reads a user certificate for `key`, and pairs them. `input` names it in errors (an input, or
 * `ssh-config`, with the file's path in `where`); `origin` says where it came from, for the log.
 * The CA's signature must verify (a SHA-1 one included: whether the server takes it is its
 * CASignatureAlgorithms' say); whether its principals name the login user is for the server to
 * decide (AuthorizedPrincipalsFile maps them). With `agent` for key, the agent's matching key signs:
 * whether it holds one is known only when connecting.
 */
export function readUserCertificate(
  input: string,
  text: string,
  key: CertificateKey | undefined,
  nowMs: number,
  origin: string,
  where = ''
): UserCertificate {
  const problem = (why: string): InputError => new InputError(input, `${where}${why}`)
  if (!key) throw problem('a certificate needs its private key: give private-key, an IdentityFile for the host in ssh-config, or agent')
  let cert: SshCertificate
  try {
    cert = parseCertificateText(text)
    verifyCertificateSignature(cert, true)
  } catch (err) {
    if (err instanceof CertificateError) throw problem(`the certificate could not be read: ${err.message}`)
    throw err
  }
  if (cert.kind !== 'user') throw problem('this is a host certificate (ssh-keygen -h); a login needs a user certificate')
  if (key !== 'agent' && !cert.publicKey.equals(key.getPublicSSH()))
    throw problem('the certificate is for another key than the private key given with it (ssh-keygen -L shows its Public key)')
  try {
    checkValidity(cert, nowMs)
  } catch (err) {
    if (err instanceof CertificateError) throw problem(`the certificate is ${err.message} (${validityText(cert)})`)
    throw err
  }
  if (key === 'agent') return { cert, key: certificateAsKey(text), origin, agent: true }
  try {
    return { cert, key: certifiedKey(key, text), origin }
  } catch (err) {
    throw problem(`the certificate ${(err as Error).message}`)
  }
}

/** The certificate as ssh2 reads a key (its public half only): the agent signs for it. */
function certificateAsKey(text: string): ParsedKey {
  const key = utils.parseKey(text)
  if (key instanceof Error || Array.isArray(key)) throw new Error('a certificate that parsed did not read as a key')
  return key
}
