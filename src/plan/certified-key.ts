/**
 * A private key paired with its OpenSSH user certificate (`-cert.pub`), as the key ssh2 authenticates
 * with. Here in plan, not ssh, so inputs can pair them up front; the connection code takes it as any key.
 *
 * Interface (issue 26; ssh2 as patched by patches/ssh2+1.17.0.patch):
 * - `certifiedKey(privateKey, certText)` returns a ParsedKey whose `type` is the certificate's
 *   (`ssh-ed25519-cert-v01@openssh.com`, `ecdsa-sha2-nistp256-cert-v01@openssh.com`,
 *   `ssh-rsa-cert-v01@openssh.com`, …), whose `getPublicSSH()` is the certificate blob, and which signs
 *   with the private key. ssh2 then offers the certificate's algorithm (an RSA certificate as
 *   `rsa-sha2-256-cert-v01@openssh.com`, then `rsa-sha2-512-cert-v01@openssh.com`, as the server lists
 *   them), the blob as public key, and a signature under the plain algorithm.
 * - It throws when the text is not a certificate or certifies another key. It reads nothing else of the
 *   certificate (validity, principals, type): that is the certificate parser's job.
 * - Hand it to ssh2 through an auth handler (src/ssh/auth.ts's `privateKey`), never ssh2's `privateKey`
 *   option, which takes only text.
 * - An agent's certificates need nothing: the patched ssh2 reads them as such keys.
 */
import { createPublicKey } from 'node:crypto'
import { utils, type ParsedKey } from 'ssh2'

const CERT = /-cert-v01@openssh\.com$/

/** The key's public half as SPKI DER, to compare keys whatever form ssh2 holds them in. */
const spki = (key: ParsedKey): Buffer => createPublicKey(key.getPublicPEM()).export({ type: 'spki', format: 'der' })

export function certifiedKey(privateKey: ParsedKey, certText: string): ParsedKey {
  const cert = utils.parseKey(certText)
  if (cert instanceof Error || Array.isArray(cert) || !CERT.test(cert.type)) {
    throw new Error('is not an OpenSSH certificate (a `-cert.pub` line: `ssh-ed25519-cert-v01@openssh.com AAAA…`)')
  }
  if (!spki(cert).equals(spki(privateKey))) throw new Error('certifies another key than the private key')
  // ssh2 reads a key through `type`, `getPublicSSH()` and `sign()`; the rest (the private half) is the key's.
  const blob = cert.getPublicSSH()
  return Object.create(privateKey, { type: { value: cert.type }, getPublicSSH: { value: () => blob } }) as ParsedKey
}
