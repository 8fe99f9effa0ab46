/**
 * OpenSSH certificates (PROTOCOL.certkeys in OpenSSH): the wire format read from untrusted bytes, the
 * CA's signature checked with Node's crypto, and OpenSSH's rules for when one is valid. Pure: both
 * plan (a user certificate checked before connecting) and ssh (a host's certificate) use it.
 * Nothing leaves parseCertificate but a certificate or a CertificateError.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto'

/** Why a certificate is not accepted: decisions are made on these, not on message text. */
export type CertificateProblem =
  | 'malformed'
  | 'unsupported'
  | 'signature'
  | 'sha1-signature'
  | 'wrong-type'
  | 'not-yet-valid'
  | 'expired'
  | 'no-principals'
  | 'principal'
  | 'critical-option'
  | 'wrong-key'

export class CertificateError extends Error {
  constructor(
    readonly problem: CertificateProblem,
    message: string
  ) {
    super(message)
    this.name = 'CertificateError'
  }
}

export interface CertificateField {
  name: string
  /** The option's data as sent (for critical options, a string inside a string). */
  data: Buffer
}

export interface SshCertificate {
  /** The whole certificate blob, as sent on the wire. */
  blob: Buffer
  /** E.g. `ssh-ed25519-cert-v01@openssh.com`. */
  certType: string
  /** The certified key's plain type, e.g. `ssh-ed25519`. */
  keyType: string
  /** The certified key as a plain public key blob (what a known_hosts line or authorized_keys holds). */
  publicKey: Buffer
  serial: bigint
  kind: 'user' | 'host'
  keyId: string
  /** Empty means every name, which OpenSSH refuses for hosts. */
  principals: string[]
  /** Seconds since the epoch; VALID_FOREVER as validBefore for no end. */
  validAfter: bigint
  validBefore: bigint
  criticalOptions: CertificateField[]
  extensions: CertificateField[]
  /** The CA's public key blob. */
  caKey: Buffer
  /** The CA signature's algorithm, e.g. `ssh-ed25519`, `rsa-sha2-512`. */
  signatureAlgorithm: string
  /** The bytes the CA signed, and its signature over them (the signature's own blob). */
  signed: Buffer
  signature: Buffer
}

/** `valid before` of a certificate without an end (ssh-keygen's `-V forever`). */
export const VALID_FOREVER = 0xffff_ffff_ffff_ffffn

/** The largest certificate read: an RSA 16384-bit key and CA with 256 principals fit well inside. */
export const CERTIFICATE_BYTES = 64 * 1024
/** OpenSSH's own limit on principals (SSHKEY_CERT_MAX_PRINCIPALS in sshkey.h). */
const MAX_PRINCIPALS = 256

const CERT_SUFFIX = '-cert-v01@openssh.com'
const TYPE_CODES: Record<number, SshCertificate['kind']> = { 1: 'user', 2: 'host' }

/** ECDSA curves by their SSH names: JWK name and the hash their signatures use (RFC 5656 6.2.1). */
const CURVES: Record<string, { jwk: string; hash: string; bytes: number }> = {
  nistp256: { jwk: 'P-256', hash: 'sha256', bytes: 32 },
  nistp384: { jwk: 'P-384', hash: 'sha384', bytes: 48 },
  nistp521: { jwk: 'P-521', hash: 'sha512', bytes: 66 }
}

/** RSA signature algorithms and their hashes; ssh-rsa (SHA-1) only when legacy algorithms are on. */
const RSA_SIGNATURES: Record<string, string> = { 'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256', 'ssh-rsa': 'sha1' }

/**
 * Text from a certificate (a host's, a file's) as a message shows it: quoted, control characters
 * escaped (no line of its own in the log), cut at `max` characters.
 */
function shown(text: string, max = 60): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text)
}

/** A cursor over SSH wire data that fails with `malformed` instead of reading past the end. */
class Reader {
  private at = 0
  constructor(
    private readonly buf: Buffer,
    private readonly what: string
  ) {}

  private take(n: number, field: string): Buffer {
    if (n > this.buf.length - this.at) throw new CertificateError('malformed', `${this.what}: ${field} runs past the end of the data`)
    const out = this.buf.subarray(this.at, this.at + n)
    this.at += n
    return out
  }
  uint32(field: string): number {
    return this.take(4, field).readUInt32BE(0)
  }
  uint64(field: string): bigint {
    return this.take(8, field).readBigUInt64BE(0)
  }
  bytes(field: string): Buffer {
    return this.take(this.uint32(field), field)
  }
  /** A text field: no NUL inside (OpenSSH reads these as C strings and refuses one). */
  text(field: string): string {
    const raw = this.bytes(field)
    if (raw.includes(0)) throw new CertificateError('malformed', `${this.what}: ${field} has a NUL byte`)
    return raw.toString('utf8')
  }
  get offset(): number {
    return this.at
  }
  get done(): boolean {
    return this.at === this.buf.length
  }
}

/** An SSH wire `string`: a 32-bit length, then the bytes. */
export function sshString(data: Buffer | string): Buffer {
  const bytes = Buffer.from(data)
  const length = Buffer.alloc(4)
  length.writeUInt32BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/** An mpint's magnitude without its sign byte, for JWK. */
function unsigned(mpint: Buffer): Buffer {
  let start = 0
  while (start < mpint.length - 1 && mpint[start] === 0) start++
  return mpint.subarray(start)
}

/**
 * Reads the public fields of a `keyType` key and returns them as a plain public key blob (type first),
 * from a certificate body or a plain key blob alike.
 */
function readKeyFields(r: Reader, keyType: string): Buffer {
  const parts: Buffer[] = [sshString(keyType)]
  if (keyType === 'ssh-ed25519') {
    const pk = r.bytes('ed25519 key')
    if (pk.length !== 32) throw new CertificateError('malformed', `an ssh-ed25519 key is 32 bytes, not ${pk.length}`)
    parts.push(sshString(pk))
  } else if (keyType.startsWith('ecdsa-sha2-')) {
    const curve = r.text('ecdsa curve')
    if (!CURVES[curve] || `ecdsa-sha2-${curve}` !== keyType)
      throw new CertificateError('malformed', `curve ${shown(curve)} does not fit ${shown(keyType)}`)
    parts.push(sshString(curve), sshString(r.bytes('ecdsa point')))
  } else if (keyType === 'ssh-rsa') {
    parts.push(sshString(r.bytes('rsa exponent')), sshString(r.bytes('rsa modulus')))
  } else {
    throw new CertificateError('unsupported', `key type ${shown(keyType)} is not supported (ed25519, ecdsa, rsa)`)
  }
  return Buffer.concat(parts)
}

/** A plain public key blob as a Node key, for checking signatures. Throws CertificateError. */
function publicKeyObject(blob: Buffer): KeyObject {
  const r = new Reader(blob, 'the CA key')
  const type = r.text('key type')
  const fields = new Reader(readKeyFields(r, type), 'the CA key')
  fields.bytes('key type')
  if (!r.done) throw new CertificateError('malformed', 'the CA key has bytes after its fields')
  try {
    if (type === 'ssh-ed25519') {
      return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: fields.bytes('pk').toString('base64url') }, format: 'jwk' })
    }
    if (type === 'ssh-rsa') {
      const e = unsigned(fields.bytes('e')).toString('base64url')
      const n = unsigned(fields.bytes('n')).toString('base64url')
      return createPublicKey({ key: { kty: 'RSA', e, n }, format: 'jwk' })
    }
    const curve = CURVES[fields.text('curve')]
    const point = fields.bytes('point')
    if (point.length !== 1 + 2 * curve.bytes || point[0] !== 4) throw new Error('not an uncompressed point')
    const x = point.subarray(1, 1 + curve.bytes).toString('base64url')
    const y = point.subarray(1 + curve.bytes).toString('base64url')
    return createPublicKey({ key: { kty: 'EC', crv: curve.jwk, x, y }, format: 'jwk' })
  } catch (err) {
    if (err instanceof CertificateError) throw err
    throw new CertificateError('malformed', `the CA key is not a valid ${type} key`)
  }
}

/** Packed name/data pairs (critical options, extensions), in the strictly ascending order the format requires. */
function readFields(data: Buffer, what: string): CertificateField[] {
  const r = new Reader(data, what)
  const fields: CertificateField[] = []
  while (!r.done) {
    const name = r.text(`${what} name`)
    const last = fields[fields.length - 1]
    if (last && last.name >= name) throw new CertificateError('malformed', `${what} are not in order or repeat ${shown(name)}`)
    fields.push({ name, data: r.bytes(`${what} data`) })
  }
  return fields
}

/** Reads a certificate blob. Throws CertificateError (malformed, unsupported) and nothing else. */
export function parseCertificate(blob: Buffer): SshCertificate {
  if (blob.length > CERTIFICATE_BYTES)
    throw new CertificateError('malformed', `a certificate of ${blob.length} bytes is larger than ${CERTIFICATE_BYTES}`)
  const r = new Reader(blob, 'the certificate')
  const certType = r.text('type')
  if (!certType.endsWith(CERT_SUFFIX)) throw new CertificateError('malformed', `${shown(certType)} is not a certificate type`)
  r.bytes('nonce')
  const keyType = certType.slice(0, -CERT_SUFFIX.length)
  const publicKey = readKeyFields(r, keyType)
  const serial = r.uint64('serial')
  const typeCode = r.uint32('certificate type')
  const kind = TYPE_CODES[typeCode]
  if (!kind) throw new CertificateError('malformed', `certificate type ${typeCode} is neither user (1) nor host (2)`)
  const keyId = r.text('key id')
  const principalData = new Reader(r.bytes('principals'), 'the principals')
  const principals: string[] = []
  while (!principalData.done) {
    if (principals.length === MAX_PRINCIPALS) throw new CertificateError('malformed', `more than ${MAX_PRINCIPALS} principals`)
    principals.push(principalData.text('principal'))
  }
  const validAfter = r.uint64('valid after')
  const validBefore = r.uint64('valid before')
  const criticalOptions = readFields(r.bytes('critical options'), 'critical options')
  const extensions = readFields(r.bytes('extensions'), 'extensions')
  r.bytes('reserved')
  const caKey = r.bytes('signature key')
  const signed = blob.subarray(0, r.offset)
  const sig = new Reader(r.bytes('signature'), 'the signature')
  if (!r.done) throw new CertificateError('malformed', 'the certificate has bytes after its signature')
  const signatureAlgorithm = sig.text('signature algorithm')
  const signature = sig.bytes('signature blob')
  // sk-* signatures carry flags and a counter after the blob; those CAs are not supported.
  if (!sig.done) throw new CertificateError('unsupported', `signature algorithm ${shown(signatureAlgorithm)} is not supported`)
  if (new Reader(caKey, 'the CA key').text('key type').endsWith(CERT_SUFFIX))
    throw new CertificateError('malformed', 'the CA key is itself a certificate')
  return {
    blob,
    certType,
    keyType,
    publicKey,
    serial,
    kind,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    caKey,
    signatureAlgorithm,
    signed,
    signature
  }
}

/** Whether a public key blob (or a known_hosts key type) is a certificate. */
export function isCertificateType(type: string): boolean {
  return type.endsWith(CERT_SUFFIX)
}

/**
 * Reads the text of a `-cert.pub` file (`type base64 [comment]`). Throws CertificateError; the text
 * is not quoted back (it may be anything).
 */
export function parseCertificateText(text: string): SshCertificate {
  const [type, data] = text.trim().split(/\s+/)
  if (!type || !data || !isCertificateType(type))
    throw new CertificateError(
      'malformed',
      `expected a certificate line: '<type>${CERT_SUFFIX} <base64> [comment]', as ssh-keygen -s writes`
    )
  if (data.length > (CERTIFICATE_BYTES * 4) / 3 + 4)
    throw new CertificateError('malformed', `the certificate is larger than ${CERTIFICATE_BYTES} bytes`)
  const blob = Buffer.from(data, 'base64')
  if (blob.toString('base64').replace(/=+$/, '') !== data.replace(/=+$/, ''))
    throw new CertificateError('malformed', 'the certificate is not valid base64')
  const cert = parseCertificate(blob)
  if (cert.certType !== type) throw new CertificateError('malformed', `the line says ${shown(type)} but the data is a ${cert.certType}`)
  return cert
}

/**
 * Checks the CA's signature over the certificate. `legacy` allows ssh-rsa (SHA-1), which OpenSSH
 * refuses by default since 8.2 (CASignatureAlgorithms). Throws CertificateError.
 */
export function verifyCertificateSignature(cert: SshCertificate, legacy = false): void {
  const ca = publicKeyObject(cert.caKey)
  const caType = describeKey(cert.caKey).type
  let ok = false
  try {
    ok = signatureVerifies(cert, ca, caType, legacy)
  } catch (err) {
    if (err instanceof CertificateError) throw err
    // Node refuses some keys outright (an RSA modulus too small for the hash): not a valid signature either.
  }
  if (!ok) throw new CertificateError('signature', 'the CA signature does not verify')
}

function signatureVerifies(cert: SshCertificate, ca: KeyObject, caType: string, legacy: boolean): boolean {
  const algo = cert.signatureAlgorithm
  if (caType === 'ssh-rsa' && RSA_SIGNATURES[algo]) {
    if (algo === 'ssh-rsa' && !legacy)
      throw new CertificateError('sha1-signature', 'the CA signed it with ssh-rsa (SHA-1), refused unless legacy-algorithms is on')
    return verify(RSA_SIGNATURES[algo], cert.signed, ca, cert.signature)
  }
  if (caType === 'ssh-ed25519' && algo === caType) return verify(null, cert.signed, ca, cert.signature)
  if (caType.startsWith('ecdsa-sha2-') && algo === caType) {
    const curve = CURVES[caType.slice('ecdsa-sha2-'.length)]
    const rs = new Reader(cert.signature, 'the ecdsa signature')
    const [r, s] = [unsigned(rs.bytes('r')), unsigned(rs.bytes('s'))]
    if (!rs.done || r.length > curve.bytes || s.length > curve.bytes) return false
    const pad = (n: Buffer): Buffer => Buffer.concat([Buffer.alloc(curve.bytes - n.length), n])
    return verify(curve.hash, cert.signed, { key: ca, dsaEncoding: 'ieee-p1363' }, Buffer.concat([pad(r), pad(s)]))
  }
  throw new CertificateError('signature', `signature algorithm ${shown(algo)} does not fit the CA's ${shown(caType)} key`)
}

/** A moment as OpenSSH prints it in messages, or `forever`. */
export function certificateTime(seconds: bigint): string {
  if (seconds === VALID_FOREVER) return 'forever'
  const ms = Number(seconds) * 1000
  return ms > 8.64e15 ? `${seconds}` : new Date(ms).toISOString().replace('.000Z', 'Z')
}

/** What a certificate says about its validity, for messages: `from … to …`. */
export function validityText(cert: SshCertificate): string {
  if (cert.validAfter === 0n && cert.validBefore === VALID_FOREVER) return 'valid forever'
  return `valid from ${cert.validAfter === 0n ? 'always' : certificateTime(cert.validAfter)} to ${certificateTime(cert.validBefore)}`
}

/** Throws `expired` or `not-yet-valid` unless `now` (ms) lies in the certificate's window, as OpenSSH counts it. */
export function checkValidity(cert: SshCertificate, nowMs: number): void {
  const now = BigInt(Math.floor(nowMs / 1000))
  if (now < cert.validAfter) throw new CertificateError('not-yet-valid', `not valid before ${certificateTime(cert.validAfter)}`)
  // OpenSSH: valid while now < valid_before.
  if (now >= cert.validBefore) throw new CertificateError('expired', `expired since ${certificateTime(cert.validBefore)}`)
}

/**
 * OpenSSH's checks of a host's certificate (sshconnect.c check_host_cert): the CA's signature, a host
 * certificate, `name` among its principals, inside its validity window, and no critical options (none
 * are defined for hosts). Stricter than OpenSSH 9.2 and 10.0's client on one point: a certificate with
 * no principals (which they take as valid for every name) is refused, since one such certificate would
 * let its key pose as any host of the fleet. Throws CertificateError.
 */
export function checkHostCertificate(cert: SshCertificate, name: string, nowMs: number, legacy = false): void {
  if (cert.kind !== 'host') throw new CertificateError('wrong-type', 'not a host certificate (it is a user certificate)')
  verifyCertificateSignature(cert, legacy)
  checkValidity(cert, nowMs)
  if (cert.principals.length === 0)
    throw new CertificateError(
      'no-principals',
      'it lists no principals (valid for any host name; ssh-fleet requires a host certificate to name its hosts)'
    )
  if (!cert.principals.includes(name)) throw new CertificateError('principal', `principal ${name} not listed`)
  if (cert.criticalOptions.length > 0) {
    throw new CertificateError(
      'critical-option',
      `it has critical options a host certificate cannot have (${cert.criticalOptions
        .slice(0, 3)
        .map((o) => shown(o.name))
        .join(', ')}${cert.criticalOptions.length > 3 ? ', …' : ''})`
    )
  }
}

/** Key type and SHA256 fingerprint of a public key blob, as `ssh-keygen -l` shows them. */
export function describeKey(blob: Buffer): { type: string; fingerprint: string } {
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : 0
  const type = len > 0 && len + 4 <= blob.length ? blob.subarray(4, 4 + len).toString('latin1') : 'unknown'
  return { type, fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}` }
}

/** Principals a log line lists: a certificate may hold 256, and a line is read by a person. */
const PRINCIPALS_SHOWN = 8

/** `principals "deploy","ops" (+3 more)`, each escaped as the key id is, for the log. */
export function principalsText(cert: SshCertificate): string {
  const { principals } = cert
  if (principals.length === 0) return 'principals none'
  const more = principals.length > PRINCIPALS_SHOWN ? ` (+${principals.length - PRINCIPALS_SHOWN} more)` : ''
  return `principals ${principals
    .slice(0, PRINCIPALS_SHOWN)
    .map((p) => shown(p))
    .join(',')}${more}`
}

/** `key id "deploy-42", serial 7`, for the log. */
export function certificateIdentity(cert: SshCertificate): string {
  return `key id ${shown(cert.keyId, 200)}, serial ${cert.serial}`
}
