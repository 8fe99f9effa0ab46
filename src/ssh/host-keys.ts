import { createHash, createHmac } from 'node:crypto'
import type { ServerHostKeyAlgorithm } from 'ssh2'
import { hasWildcard, wildcardMatch } from '../base/wildcard'

/** One usable line of known_hosts. */
export interface KnownHost {
  revoked: boolean
  /** The key's type, e.g. `ssh-ed25519`. */
  type: string
  /** Whether the line's host field (patterns, or one hashed name) names this lowercase lookup name. */
  matches: (name: string) => boolean
  key: Buffer
  /** Where it came from, e.g. `known-hosts line 3`, for messages. */
  origin: string
}

/** An accepted fingerprint: `SHA256:…`, for every host or for the named one. */
export interface Fingerprint {
  host?: string
  sha256: string
}

export interface HostKeyPolicy {
  mode: 'strict' | 'off'
  knownHosts: KnownHost[]
  fingerprints: Fingerprint[]
}

export interface HostIdentity {
  name: string
  hostname: string
  port: number
  /** Looked up in known_hosts instead of host and port (OpenSSH's HostKeyAlias). */
  hostKeyAlias?: string
}

/** `via` says what accepted the key, for the log: an audit of a deploy shows where trust came from. */
export type HostKeyVerdict = { accepted: true; via: string } | { accepted: false; reason: string }

/** Key type and fingerprint of a public key blob, as `ssh-keygen -l` shows them. */
export function describeKey(blob: Buffer): { type: string; fingerprint: string } {
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : 0
  const type = len > 0 && len + 4 <= blob.length ? blob.subarray(4, 4 + len).toString('latin1') : 'unknown'
  return { type, fingerprint: `SHA256:${sha256(blob)}` }
}

function sha256(blob: Buffer): string {
  return createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
}

/**
 * Parses known_hosts text. With `strict`, a malformed line throws (it came from the user's input);
 * otherwise it is skipped, as OpenSSH skips them in ~/.ssh/known_hosts.
 */
export function parseKnownHosts(text: string, source: string, strict: boolean): KnownHost[] {
  const entries: KnownHost[] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const origin = `${source} line ${i + 1}`
    const fields = line.split(/\s+/)
    let marker: string | undefined
    if (fields[0].startsWith('@')) marker = fields.shift()
    const [hosts, type, data] = fields
    const invalid = (why: string): void => {
      if (strict) throw new Error(`${origin}: ${why}`)
    }
    if (marker !== undefined && marker !== '@revoked' && marker !== '@cert-authority') {
      return invalid(`unknown marker '${marker}' (expected @revoked or @cert-authority)`)
    }
    if (!hosts || !type || !data) return invalid('expected "[marker] hosts key-type base64-key"')
    const key = Buffer.from(data, 'base64')
    if (key.length === 0 || key.toString('base64').replace(/=+$/, '') !== data.replace(/=+$/, '')) {
      return invalid('the key is not valid base64')
    }
    if (describeKey(key).type !== type) return invalid(`the key data is not a ${type} key`)
    // Host certificates are not supported: a CA line vouches for no plain key, so it matches nothing.
    if (marker === '@cert-authority') return
    entries.push({ revoked: marker === '@revoked', type, matches: hostsMatcher(hosts), key, origin })
  })
  return entries
}

/** Parses `fingerprint` lines: `SHA256:…` or `host=SHA256:…`. Throws on a malformed line. */
export function parseFingerprints(text: string): Fingerprint[] {
  const result: Fingerprint[] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const m = /^(?:([^=\s]+)=)?SHA256:([A-Za-z0-9+/]{43})=?$/.exec(line)
    if (!m) {
      throw new Error(`line ${i + 1}: expected SHA256:<43 base64 characters> or host=SHA256:…, as ssh-keygen -lf prints`)
    }
    result.push({ host: m[1], sha256: m[2] })
  })
  return result
}

/** The names a known_hosts line must match for this host, as OpenSSH writes them. */
function lookupName(host: HostIdentity): string {
  if (host.hostKeyAlias) return host.hostKeyAlias.toLowerCase()
  // OpenSSH lowercases the name first: a hashed line for web1 must match a host written WEB1.
  const hostname = host.hostname.toLowerCase()
  return host.port === 22 ? hostname : `[${hostname}]:${host.port}`
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
 * The host key algorithms to ask this host for, in ssh2's order except that those of the keys its
 * known_hosts lines hold come first, as OpenSSH orders them, so a host with several keys presents
 * one we know.
 */
export function hostKeyAlgorithms(policy: HostKeyPolicy, host: HostIdentity): ServerHostKeyAlgorithm[] {
  const types = new Set(
    linesFor(policy, lookupName(host))
      .filter((k) => !k.revoked)
      .map((k) => k.type)
  )
  const known = HOST_KEY_ALGORITHMS.filter((a) => types.has(a.startsWith('rsa-sha2-') ? 'ssh-rsa' : a))
  return [...known, ...HOST_KEY_ALGORITHMS.filter((a) => !known.includes(a))]
}

/** One host pattern as a test: a plain name (the usual line) is compared, a wildcard one matched in linear time. */
function patternTest(pattern: string): (name: string) => boolean {
  if (!hasWildcard(pattern)) {
    const plain = pattern.toLowerCase()
    return (name) => name === plain
  }
  return (name) => wildcardMatch(pattern, name)
}

/**
 * A line's host field as a test, built once: every host of a fleet is looked up in every line.
 * OpenSSH pattern-list semantics: any negated match excludes, else any positive match includes.
 */
function hostsMatcher(hosts: string): (name: string) => boolean {
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|')
    if (!salt || !hash) return () => false
    const key = Buffer.from(salt, 'base64')
    return (name) => createHmac('sha1', key).update(name).digest('base64') === hash
  }
  const patterns = hosts.split(',').map((p) => ({ negated: p.startsWith('!'), test: patternTest(p.replace(/^!/, '')) }))
  return (name) => {
    let matched = false
    for (const { negated, test } of patterns) {
      if (test(name)) {
        if (negated) return false
        matched = true
      }
    }
    return matched
  }
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

/** Decides whether the key a host presented is acceptable under the policy. */
export function verifyHostKey(policy: HostKeyPolicy, host: HostIdentity, key: Buffer): HostKeyVerdict {
  const { type, fingerprint } = describeKey(key)
  const name = lookupName(host)
  const lines = linesFor(policy, name)
  const revoked = lines.find((k) => k.revoked && k.key.equals(key))
  if (revoked) {
    return { accepted: false, reason: `host key ${type} ${fingerprint} is marked @revoked (${revoked.origin})` }
  }
  const accepted = (by: string): HostKeyVerdict => ({ accepted: true, via: `host key ${type} ${fingerprint} accepted ${by}` })
  if (policy.mode === 'off') return accepted('without checking (host-key-check: off)')
  const known = lines.find((k) => !k.revoked && k.key.equals(key))
  if (known) return accepted(`by ${known.origin}`)
  const sha = fingerprint.slice('SHA256:'.length)
  if (policy.fingerprints.some((fp) => fp.sha256 === sha && fingerprintApplies(fp, host))) {
    return accepted('by fingerprint pin')
  }
  const mismatch = lines.some((k) => !k.revoked)
    ? ` does not match the key known for ${name} (it may have changed, or this is not the host you expect)`
    : ` is not known (no known-hosts line or fingerprint for ${name})`
  return {
    accepted: false,
    reason:
      `host key ${type} ${fingerprint}${mismatch}. ` +
      `If you trust it, pin it with the input fingerprint: '${host.name}=${fingerprint}', ` +
      `or add the output of 'ssh-keyscan -p ${host.port} ${host.hostname}' to known-hosts`
  }
}
