import type { ServerHostKeyAlgorithm } from 'ssh2'
import {
  CertificateError,
  certificateIdentity,
  checkHostCertificate,
  isCertificateType,
  parseCertificate,
  validityText,
  type SshCertificate
} from '../base/ssh-certificate'
import { describeKey, type Fingerprint, type HostKeyPolicy, type KnownHost } from '../plan/known-hosts'

export interface HostIdentity {
  name: string
  hostname: string
  port: number
  /** Looked up in known_hosts instead of host and port (OpenSSH's HostKeyAlias). */
  hostKeyAlias?: string
}

/** `via` says what accepted the key, for the log: an audit of a deploy shows where trust came from. */
export type HostKeyVerdict = { accepted: true; via: string } | { accepted: false; reason: string }

/** The name a known_hosts line must match for this host, as OpenSSH writes it. */
function lookupName(host: HostIdentity): string {
  if (host.hostKeyAlias) return host.hostKeyAlias.toLowerCase()
  // OpenSSH lowercases the name first: a hashed line for web1 must match a host written WEB1.
  const hostname = host.hostname.toLowerCase()
  return host.port === 22 ? hostname : `[${hostname}]:${host.port}`
}

/**
 * The bare host name looked up when no line for `[host]:port` knows the key: OpenSSH (sshconnect.c
 * check_host_key, HOST_NEW, "checking without port identifier") retries without the port, for plain
 * lines and @cert-authority lines alike, unless HostKeyAlias is set. A plain line for `[host]:port`
 * with another key makes the key changed there, and no retry happens.
 */
function portlessName(host: HostIdentity): string | undefined {
  return host.hostKeyAlias || host.port === 22 ? undefined : host.hostname.toLowerCase()
}

/** ssh2's host key algorithms, in its order of preference. */
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa'
]

/**
 * Host certificate algorithms (OpenSSH's PROTOCOL.certkeys), which the patched ssh2 (patches/) offers only
 * when they are listed in `algorithms.serverHostKey`; ssh-rsa (SHA-1) certificates are not among them.
 *
 * Interface (issue 26): when one is negotiated, ssh2 checks the exchange-hash signature with the key the
 * certificate holds (an RSA one with the hash the negotiated name says) and calls
 * `hostVerifier(key, verify, algorithm)` with `key` the whole certificate blob, whose leading type string
 * ends in `-cert-v01@openssh.com` (a plain key's does not), and `algorithm` the negotiated name (e.g.
 * `rsa-sha2-512-cert-v01@openssh.com`, while an RSA certificate's own type is `ssh-rsa-cert-v01@openssh.com`).
 * The certificate's CA signature, principals, validity and type are the verifier's to check.
 */
export const HOST_CERTIFICATE_ALGORITHMS: readonly string[] = HOST_KEY_ALGORITHMS.filter((a) => a !== 'ssh-rsa').map(
  (a) => `${a}-cert-v01@openssh.com`
)

/**
 * The host key algorithms to ask this host for, in ssh2's order except that those of the keys its
 * known_hosts lines hold come first, as OpenSSH orders them, so a host with several keys presents
 * one we know. Certificates are asked for first, and only, where a @cert-authority line covers the
 * host, with its port or without (OpenSSH's retry, portlessName): elsewhere no line could accept one,
 * and its plain key is what a line or pin names.
 */
export function hostKeyAlgorithms(policy: HostKeyPolicy, host: HostIdentity): ServerHostKeyAlgorithm[] {
  const lines = linesFor(policy, lookupName(host))
  const bare = portlessName(host)
  const fallback = bare === undefined ? [] : linesFor(policy, bare)
  // The plain lines that can accept a key: those for [host]:port, else (OpenSSH's retry) the bare name's.
  const plain = lines.some((k) => !k.marker) ? lines : fallback
  const types = new Set(plain.filter((k) => !k.marker).map((k) => k.type))
  const known = HOST_KEY_ALGORITHMS.filter((a) => types.has(a.startsWith('rsa-sha2-') ? 'ssh-rsa' : a))
  const authority = [...lines, ...fallback].some((k) => k.marker === 'cert-authority')
  const certificates = authority ? (HOST_CERTIFICATE_ALGORITHMS as ServerHostKeyAlgorithm[]) : []
  return [...certificates, ...known, ...HOST_KEY_ALGORITHMS.filter((a) => !known.includes(a))]
}

/** The known_hosts lines a name matches, once per name: a host is looked up at each (re)connection. */
const lookups = new WeakMap<KnownHost[], Map<string, KnownHost[]>>()
function linesFor(policy: HostKeyPolicy, name: string): KnownHost[] {
  let byName = lookups.get(policy.knownHosts)
  if (!byName) lookups.set(policy.knownHosts, (byName = new Map()))
  let lines = byName.get(name)
  if (!lines) byName.set(name, (lines = policy.knownHosts.filter((k) => k.matches(name))))
  return lines
}

function fingerprintApplies(fp: Fingerprint, host: HostIdentity): boolean {
  if (fp.host === undefined) return true
  const wanted = fp.host.toLowerCase()
  return [host.name, host.hostname, lookupName(host)].some((n) => n.toLowerCase() === wanted)
}

/** When and how a host's certificate is checked: the clock, and whether a SHA-1 CA signature may pass. */
export interface VerifyOptions {
  nowMs?: number
  /** `legacy-algorithms`: a CA's ssh-rsa (SHA-1) signature is accepted. */
  legacy?: boolean
}

/**
 * Decides whether the key a host presented is acceptable under the policy. A certificate is accepted
 * through a matching @cert-authority line under OpenSSH's rules; when it is not, its plain key is
 * checked as any key is (OpenSSH does the same), unless the key or its CA is @revoked.
 */
export function verifyHostKey(policy: HostKeyPolicy, host: HostIdentity, key: Buffer, options: VerifyOptions = {}): HostKeyVerdict {
  if (!isCertificateType(describeKey(key).type)) return verifyPlainKey(policy, host, key)
  let cert: SshCertificate
  try {
    cert = parseCertificate(key)
  } catch (err) {
    if (!(err instanceof CertificateError)) throw err
    return { accepted: false, reason: `the host's certificate ${describeKey(key).fingerprint} could not be read: ${err.message}` }
  }
  const names = [lookupName(host), portlessName(host)].filter((n) => n !== undefined)
  const byName = names.map((n) => linesFor(policy, n))
  // Revocation is looked up under both names: stricter than OpenSSH, whose retry ignores a bare-name
  // @revoked line once a [host]:port line accepts the key.
  const lines = byName.flat()
  const ca = describeKey(cert.caKey)
  // OpenSSH (hostfile.c check_key_not_revoked): a certificate is revoked with its key or its CA.
  const revoked = lines.find((k) => revokes(k, cert.caKey) || revokes(k, cert.publicKey))
  if (revoked) {
    const byCa = revokes(revoked, cert.caKey)
    const { type, fingerprint } = describeKey(byCa ? cert.caKey : cert.publicKey)
    const what = byCa ? 'signed by revoked CA' : 'for revoked host key'
    return { accepted: false, reason: `host certificate ${what} ${type} ${fingerprint} (@revoked, ${revoked.origin})` }
  }
  if (policy.mode === 'off') return verifyPlainKey(policy, host, cert.publicKey)
  // A CA line for [host]:port naming this CA decides; without one, OpenSSH retries with the bare name.
  const authority = byName.map((l) => l.find((k) => k.marker === 'cert-authority' && k.key.equals(cert.caKey))).find((k) => k)
  let refusal: string
  if (authority) {
    try {
      checkHostCertificate(cert, principalName(host), options.nowMs ?? Date.now(), options.legacy)
      const { type, fingerprint } = describeKey(cert.publicKey)
      return {
        accepted: true,
        via: `host key ${type} ${fingerprint} accepted: certificate signed by CA ${ca.type} ${ca.fingerprint} (${authority.origin}), ${certificateIdentity(cert)}, ${validityText(cert)}`
      }
    } catch (err) {
      if (!(err instanceof CertificateError)) throw err
      refusal = `host certificate signed by CA ${ca.fingerprint} (${authority.origin}), ${certificateIdentity(cert)}, refused: ${err.message}`
    }
  } else {
    refusal = `host certificate signed by CA ${ca.type} ${ca.fingerprint}: no @cert-authority line for ${names.join(' or ')} names that CA`
  }
  const plain = verifyPlainKey(policy, host, cert.publicKey)
  return plain.accepted ? { accepted: true, via: `${plain.via} (${refusal})` } : { accepted: false, reason: `${refusal}; ${plain.reason}` }
}

/**
 * Whether a line revokes the plain key `blob`. A @revoked line may hold a certificate: OpenSSH compares
 * public keys (sshkey_equal_public), so it revokes the key the certificate certifies.
 */
function revokes(line: KnownHost, blob: Buffer): boolean {
  if (line.marker !== 'revoked') return false
  if (!isCertificateType(line.type)) return line.key.equals(blob)
  try {
    return parseCertificate(line.key).publicKey.equals(blob)
  } catch {
    return false // a line that is no readable certificate revokes nothing it could be compared with
  }
}

/** The name a host certificate must list as a principal: the host name without port, or HostKeyAlias (as OpenSSH checks it). */
function principalName(host: HostIdentity): string {
  return (host.hostKeyAlias ?? host.hostname).toLowerCase()
}

/** A plain host key against known_hosts lines and fingerprint pins. */
function verifyPlainKey(policy: HostKeyPolicy, host: HostIdentity, key: Buffer): HostKeyVerdict {
  const { type, fingerprint } = describeKey(key)
  const name = lookupName(host)
  const bare = portlessName(host)
  const lines = linesFor(policy, name)
  const fallback = bare === undefined ? [] : linesFor(policy, bare)
  const revoked = [...lines, ...fallback].find((k) => revokes(k, key))
  if (revoked) {
    return { accepted: false, reason: `host key ${type} ${fingerprint} is marked @revoked (${revoked.origin})` }
  }
  const accepted = (by: string): HostKeyVerdict => ({ accepted: true, via: `host key ${type} ${fingerprint} accepted ${by}` })
  if (policy.mode === 'off') return accepted('without checking (host-key-check: off)')
  const known = lines.find((k) => !k.marker && k.key.equals(key))
  if (known) return accepted(`by ${known.origin}`)
  // OpenSSH retries without the port only where no plain line for [host]:port names a key (HOST_NEW).
  const changed = lines.some((k) => !k.marker)
  const portless = changed ? undefined : fallback.find((k) => !k.marker && k.key.equals(key))
  if (portless) return accepted(`by ${portless.origin} (for ${bare}, without the port)`)
  const sha = fingerprint.slice('SHA256:'.length)
  if (policy.fingerprints.some((fp) => fp.sha256 === sha && fingerprintApplies(fp, host))) {
    return accepted('by fingerprint pin')
  }
  const authority = [...lines, ...fallback].find((k) => k.marker === 'cert-authority')
  const mismatch = changed
    ? ` does not match the key known for ${name} (it may have changed, or this is not the host you expect)`
    : ` is not known (no known-hosts line or fingerprint for ${[name, ...(bare === undefined ? [] : [bare])].join(' or ')}${authority ? `; ${authority.origin} is a @cert-authority line for it, and a CA vouches only for a certificate` : ''})`
  return {
    accepted: false,
    reason:
      `host key ${type} ${fingerprint}${mismatch}. ` +
      `If you trust it, pin it with the input fingerprint: '${host.name}=${fingerprint}', ` +
      `or add the output of 'ssh-keyscan -p ${host.port} ${host.hostname}' to known-hosts`
  }
}
