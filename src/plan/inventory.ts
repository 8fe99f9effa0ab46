import { isIP } from 'node:net'
import type { SshConfig } from './ssh-config'
import type { Host } from './settings'

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/
const USER = /^[A-Za-z0-9._][A-Za-z0-9._-]*\$?$/

/** Checks a login user name: letters, digits, `.`, `_`, `-` (not first), an optional final `$`. */
export function parseUser(text: string): string {
  if (!USER.test(text)) throw new Error(`'${text}' is not a user name (letters, digits, . _ and -, not starting with -)`)
  return text
}

/** Parses a port number written in an input; throws with the reason. */
export function parsePort(text: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`port '${text}' is not a number`)
  const port = Number(text)
  if (port < 1 || port > 65535) throw new Error(`port ${text} is out of range 1-65535`)
  return port
}

/** Splits one `[user@]host[:port]` entry (IPv6 in brackets) into its parts. */
export function parseHostEntry(entry: string): { user?: string; hostname: string; port?: string } {
  const at = entry.lastIndexOf('@')
  const user = at >= 0 ? entry.slice(0, at) : undefined
  const rest = at >= 0 ? entry.slice(at + 1) : entry
  if (user !== undefined && !USER.test(user)) throw new Error(`'${entry}' has an invalid user name '${user}'`)
  let hostname: string
  let port: string | undefined
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(rest)
  if (bracketed) {
    hostname = bracketed[1]
    port = bracketed[2]
    if (isIP(hostname) !== 6) throw new Error(`'${entry}': only an IPv6 address goes in brackets`)
  } else if (isIP(rest) === 6) {
    hostname = rest // bare IPv6 without a port
  } else {
    const colon = rest.indexOf(':')
    hostname = colon >= 0 ? rest.slice(0, colon) : rest
    port = colon >= 0 ? rest.slice(colon + 1) : undefined
    // `__proto__` is no machine's name, and as a key of a plain object it would reach Object.prototype.
    if (!HOSTNAME.test(hostname) || hostname === '__proto__')
      throw new Error(`'${entry}' is not [user@]host[:port] (host '${hostname}' is not a valid name or address)`)
  }
  if (port !== undefined) {
    try {
      parsePort(port)
    } catch (err) {
      throw new Error(`'${entry}': ${(err as Error).message}`)
    }
  }
  return { user, hostname, port }
}

/**
 * Resolves the `hosts` input (newlines, commas or spaces between entries) to hosts with user and port.
 * Throws on a malformed entry, a missing user or a duplicate.
 */
export function parseHosts(text: string, defaults: { user?: string; port?: number; config?: SshConfig }): Host[] {
  const entries = text.split(/[\s,]+/).filter((e) => e !== '')
  if (entries.length === 0) throw new Error('no hosts given')
  const seen = new Map<string, string>()
  return entries.map((name, index) => {
    const parsed = parseHostEntry(name)
    // What the entry says wins, then the inputs (username, port), then the ssh config, as in OpenSSH.
    const config = defaults.config?.resolve(parsed.hostname, parsed.user)
    const user = parsed.user ?? defaults.user ?? config?.user
    if (!user)
      throw new Error(
        `'${name}' has no user: write user@host, set the input username${defaults.config ? ', or give it a User in ssh-config' : ''}`
      )
    if (!USER.test(user)) throw new Error(`'${name}': the user name '${user}' from ssh-config is not valid`)
    let port = defaults.port ?? 22
    const portText = parsed.port ?? (defaults.port === undefined ? config?.port : undefined)
    if (portText !== undefined) {
      try {
        port = parsePort(portText)
      } catch (err) {
        throw new Error(`'${name}': ${(err as Error).message}`)
      }
    }
    const hostname = config?.hostname ?? parsed.hostname
    const key = `${user}@${hostname.toLowerCase()}:${port}`
    const earlier = seen.get(key)
    if (earlier !== undefined) throw new Error(`'${name}' is listed twice (same as '${earlier}')`)
    seen.set(key, name)
    return { name, user, hostname, port, index, ...(config?.hostKeyAlias ? { hostKeyAlias: config.hostKeyAlias } : {}) }
  })
}

/** The shard (1 to `count`) that runs the host at `index` of the hosts input: every `count`-th host. */
export function shardOf(index: number, count: number): number {
  return (index % count) + 1
}
