/**
 * A private key's text (an input, or an ssh config's IdentityFile) as the key ssh2 signs with. ssh2
 * 1.17 reads OpenSSH, PEM (PKCS#1, SEC1) and PuTTY keys; PKCS#8 PEM (`BEGIN PRIVATE KEY`, what
 * OpenSSL 3's `genpkey` writes, and `BEGIN ENCRYPTED PRIVATE KEY`) it calls "Unsupported key format",
 * so Node's crypto reads those, and they reach ssh2 in a form it reads.
 */
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto'
import { utils, type ParsedKey } from 'ssh2'
import { registerSecretLines } from '../base/secrets'
import { sshString } from '../base/ssh-certificate'
import { InputError } from './input-error'

const PKCS8 = /-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/

/** The curves ssh2 has ECDSA keys for (ecdsa-sha2-nistp256/384/521), by Node's names for them. */
const SSH_CURVES: ReadonlySet<string> = new Set(['prime256v1', 'secp384r1', 'secp521r1'])

/** openssh-key-v1's private section is padded to the cipher's block size; 8 for `none` (OpenSSH's sshkey.c). */
const OPENSSH_BLOCK = 8
/** OpenSSH wraps the base64 of its key files at 70 columns. */
const OPENSSH_LINE = 70

/**
 * An ed25519 key as an unencrypted openssh-key-v1 file (PROTOCOL.key in OpenSSH), the only ed25519
 * form ssh2 reads, built from the key's raw halves (Node exports them as JWK).
 */
function openSshEd25519(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' })
  const seed = Buffer.from(jwk.d as string, 'base64url')
  const pub = Buffer.from(jwk.x as string, 'base64url')
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)])
  const check = randomBytes(4)
  const section = Buffer.concat([check, check, publicBlob, sshString(Buffer.concat([seed, pub])), sshString('')])
  const padding = Buffer.from(Array.from({ length: (OPENSSH_BLOCK - (section.length % OPENSSH_BLOCK)) % OPENSSH_BLOCK }, (_, i) => i + 1))
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    Buffer.from([0, 0, 0, 1]),
    sshString(publicBlob),
    sshString(Buffer.concat([section, padding]))
  ])
  const lines = body.toString('base64').match(new RegExp(`.{1,${OPENSSH_LINE}}`, 'g')) ?? []
  return ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n')
}

/**
 * A PKCS#8 PEM key as text ssh2 reads: RSA as PKCS#1 and ECDSA as SEC1 PEM, ed25519 as
 * openssh-key-v1, all unencrypted (Node has decrypted it with the passphrase). Throws saying why not.
 */
function fromPkcs8(text: string, passphrase: string): string {
  const encrypted = PKCS8.exec(text)?.[1] !== undefined
  if (encrypted && !passphrase) throw new Error('it is encrypted (BEGIN ENCRYPTED PRIVATE KEY): give its passphrase')
  let key: KeyObject
  try {
    key = createPrivateKey({ key: text, format: 'pem', ...(encrypted ? { passphrase } : {}) })
  } catch (err) {
    const code = (err as { code?: string }).code
    throw new Error(code === 'ERR_OSSL_BAD_DECRYPT' ? 'the passphrase does not decrypt it' : `not a PKCS#8 key (${code ?? 'unreadable'})`)
  }
  const type = key.asymmetricKeyType
  if (type === 'rsa') return key.export({ type: 'pkcs1', format: 'pem' }) as string
  if (type === 'ec' && SSH_CURVES.has(key.asymmetricKeyDetails?.namedCurve ?? ''))
    return key.export({ type: 'sec1', format: 'pem' }) as string
  if (type === 'ed25519') return openSshEd25519(key)
  const what = type === 'ec' ? `an EC key on ${key.asymmetricKeyDetails?.namedCurve}` : `a key of type ${type}`
  throw new Error(`a PKCS#8 key, but ${what}: SSH takes RSA, ECDSA (P-256, P-384, P-521) or ed25519`)
}

/**
 * Reads a private key for `input` (the name the errors give). PKCS#8 is converted first; the
 * converted text is a secret as the original is.
 */
export function parsePrivateKey(input: string, text: string, passphrase: string): ParsedKey {
  const problem = (why: string): InputError =>
    new InputError(input, `the private key could not be read${passphrase ? ' with the given passphrase' : ''}: ${why}`)
  let keyText = text.trim() + '\n'
  if (PKCS8.test(keyText)) {
    try {
      keyText = fromPkcs8(keyText, passphrase)
    } catch (err) {
      throw problem((err as Error).message)
    }
    registerSecretLines(keyText)
  }
  const parsed = utils.parseKey(keyText, passphrase || undefined)
  if (parsed instanceof Error) throw problem(parsed.message)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (!key.isPrivateKey())
    throw new InputError(input, 'this is a public key (a .pub file or an authorized_keys line); give the private key')
  return key
}
