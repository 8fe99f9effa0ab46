/**
 * A user certificate (the `certificate` input, a `-cert.pub` file from ssh-config) checked against its
 * private key before anything connects: unreadable, a host certificate, for another key, or outside
 * its validity window is an input error naming where it came from, not a refused login on every host.
 */
import type { ParsedKey } from 'ssh2'
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

/**
 * Reads a user certificate for `key`, and pairs them. `input` names it in errors (an input, or
 * `ssh-config`, with the file's path in `where`); `origin` says where it came from, for the log.
 * The CA's signature must verify (a SHA-1 one included: whether the server takes it is its
 * CASignatureAlgorithms' say); whether its principals name the login user is for the server to
 * decide (AuthorizedPrincipalsFile maps them).
 */
export function readUserCertificate(
  input: string,
  text: string,
  key: ParsedKey | undefined,
  nowMs: number,
  origin: string,
  where = ''
): UserCertificate {
  const problem = (why: string): InputError => new InputError(input, `${where}${why}`)
  if (!key) throw problem('a certificate needs its private key: give private-key (or an IdentityFile) with it')
  let cert: SshCertificate
  try {
    cert = parseCertificateText(text)
    verifyCertificateSignature(cert, true)
  } catch (err) {
    if (err instanceof CertificateError) throw problem(`the certificate could not be read: ${err.message}`)
    throw err
  }
  if (cert.kind !== 'user') throw problem('this is a host certificate (ssh-keygen -h); a login needs a user certificate')
  if (!cert.publicKey.equals(key.getPublicSSH()))
    throw problem('the certificate is for another key than the private key given with it (ssh-keygen -L shows its Public key)')
  try {
    checkValidity(cert, nowMs)
  } catch (err) {
    if (err instanceof CertificateError) throw problem(`the certificate is ${err.message} (${validityText(cert)})`)
    throw err
  }
  try {
    return { cert, key: certifiedKey(key, text), origin }
  } catch (err) {
    throw problem(`the certificate ${(err as Error).message}`)
  }
}
