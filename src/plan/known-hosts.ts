/**
 * The host-key inputs as data: known_hosts lines (`known-hosts`, ~/.ssh/known_hosts) and pinned
 * fingerprints, parsed once when the inputs are read. Checking a host's key against them is ssh/host-keys.
 */
import { createHmac } from 'node:crypto'
import { describeKey } from '../base/ssh-certificate'
import { hasWildcard, wildcardMatch } from '../base/wildcard'

export { describeKey }

/** One usable line of known_hosts. */
export interface KnownHost {
  /**
   * `@revoked`: the key is refused for the hosts named (as a host key, or as the CA of a host's
   * certificate). `@cert-authority`: a CA key vouching for the host certificates it signs.
   */
  marker?: 'revoked' | 'cert-authority'
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
    entries.push({
      ...(marker ? { marker: marker === '@revoked' ? 'revoked' : 'cert-authority' } : {}),
      type,
      matches: hostsMatcher(hosts),
      key,
      origin
    })
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
