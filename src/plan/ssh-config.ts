import { homedir } from 'node:os'
import SSHConfig, { type Directive, type Line } from 'ssh-config'
import { wildcardMatch } from '../base/wildcard'

/** What an OpenSSH client config says about one host, in the keywords ssh-fleet honours. */
export interface ConfigHost {
  hostname?: string
  user?: string
  port?: string
  /** `ProxyJump` as written (`a,b`), or `none`. */
  proxyJump?: string
  /** `ProxyCommand` as written (tokens not substituted), or `none`. */
  proxyCommand?: string
  /** `IdentityFile` paths, `~` expanded, in order. */
  identityFiles: string[]
  /** `CertificateFile` paths, `~` expanded, in order. */
  certificateFiles: string[]
  connectTimeout?: string
  serverAliveInterval?: string
  serverAliveCountMax?: string
  hostKeyAlias?: string
}

/** The keywords honoured (lower case), and the ConfigHost field each fills; every other one is warned about. */
const HONOURED = {
  hostname: 'hostname',
  user: 'user',
  port: 'port',
  proxyjump: 'proxyJump',
  proxycommand: 'proxyCommand',
  connecttimeout: 'connectTimeout',
  serveralivecountmax: 'serverAliveCountMax',
  serveraliveinterval: 'serverAliveInterval',
  hostkeyalias: 'hostKeyAlias'
} as const satisfies Record<string, Exclude<keyof ConfigHost, 'identityFiles' | 'certificateFiles'>>

/** Match criteria honoured; `canonical`, `final`, `exec`, `localuser`, `localnetwork`… are not. */
const CRITERIA = new Set(['all', 'host', 'originalhost', 'user'])

/** OpenSSH-compatible resolution of `ssh-config` text; `warnings` names what it does not honour. */
export interface SshConfig {
  resolve(alias: string, user?: string): ConfigHost
  warnings: string[]
}

type Value = string | Array<{ val: string; quoted?: boolean }>

/** A keyword's value as one string: the words of a multi-word value (ProxyCommand) joined again. */
function text(value: Value): string {
  return typeof value === 'string' ? value : value.map((w) => (w.quoted ? `"${w.val}"` : w.val)).join(' ')
}

/** The words of a Host or Match line. */
function words(value: Value): string[] {
  return typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : value.map((w) => w.val)
}

/** A comma-separated pattern list with `!` negation: some positive pattern matches and no negated one. */
function matchList(list: string[], name: string, ignoreCase: boolean): boolean {
  let matched = false
  for (const pattern of list) {
    if (pattern.startsWith('!')) {
      if (wildcardMatch(pattern.slice(1), name, ignoreCase)) return false
    } else if (wildcardMatch(pattern, name, ignoreCase)) matched = true
  }
  return matched
}

/** What a section's opening line asks of a host; undefined for a Match ssh-fleet cannot decide. */
type Condition = (host: { alias: string; hostname?: string; user?: string }) => boolean

function hostCondition(line: Directive): Condition {
  const patterns = words(line.value as Value)
  return (h) => matchList(patterns, h.alias, true)
}

/**
 * `Match` with host, originalhost, user and all (each may be negated); for any other criterion, its
 * name (the section then applies to no host).
 */
function matchCondition(line: Directive): Condition | string {
  const tokens = words(line.value as Value)
  const tests: Condition[] = []
  for (let i = 0; i < tokens.length; i++) {
    const negated = tokens[i].startsWith('!')
    const criterion = tokens[i].replace(/^!/, '').toLowerCase()
    if (!CRITERIA.has(criterion)) return criterion
    if (criterion === 'all') {
      tests.push(() => !negated)
      continue
    }
    const list = (tokens[++i] ?? '').split(',').filter(Boolean)
    if (list.length === 0) return `${criterion} without a pattern`
    const subject = (h: Parameters<Condition>[0]): string | undefined =>
      criterion === 'user' ? h.user : criterion === 'host' ? (h.hostname ?? h.alias) : h.alias
    tests.push((h) => {
      const name = subject(h)
      return name !== undefined && matchList(list, name, criterion !== 'user') !== negated
    })
  }
  return (h) => tests.every((t) => t(h))
}

/**
 * Parses OpenSSH client configuration text with the `ssh-config` package's parser, and resolves it with
 * our own code: `Host` patterns with `*`, `?` and `!`, and `Match host`, `originalhost`, `user` and
 * `all`, matched in linear time (base/wildcard), first value wins. Nothing in it ever runs a program:
 * `Match exec`, `canonical`, `final`, `localuser`… and `CanonicalizeHostName` are warned about and
 * never change a route (such a Match section applies to no host).
 */
export function parseSshConfig(configText: string): SshConfig {
  const parsed = SSHConfig.parse(configText)
  const unsupported = new Set<string>()
  // Sections in order; directives before the first Host or Match apply to every host.
  const sections: Array<{ applies: Condition; lines: Directive[] }> = [{ applies: () => true, lines: [] }]
  const visit = (lines: Line[]): void => {
    for (const line of lines) {
      if (line.type !== SSHConfig.DIRECTIVE) continue
      const param = line.param.toLowerCase()
      if (param === 'host' || param === 'match') {
        const condition = param === 'host' ? hostCondition(line) : matchCondition(line)
        if (typeof condition === 'string') unsupported.add(`Match ${condition}`)
        sections.push({ applies: typeof condition === 'string' ? () => false : condition, lines: [] })
        if ('config' in line) visit(line.config as Line[])
        continue
      }
      if (!(param in HONOURED) && param !== 'identityfile' && param !== 'certificatefile') unsupported.add(line.param)
      sections[sections.length - 1].lines.push(line)
    }
  }
  visit(parsed)
  const warnings = [...unsupported].map((k) => `ssh-config: ${k} is not supported by ssh-fleet and was ignored`)
  const expand = (path: string): string => (path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path)
  return {
    warnings,
    resolve(alias, user) {
      // Every field present (undefined when the config says nothing), the given user first.
      const found: ConfigHost = {
        identityFiles: [],
        certificateFiles: [],
        ...Object.fromEntries(Object.values(HONOURED).map((f) => [f, undefined])),
        user
      }
      for (const section of sections) {
        if (!section.applies({ alias, hostname: found.hostname, user: found.user })) continue
        for (const line of section.lines) {
          const param = line.param.toLowerCase()
          const value = text(line.value as Value)
          if (param === 'identityfile') found.identityFiles.push(expand(value))
          else if (param === 'certificatefile') found.certificateFiles.push(expand(value))
          else if (param in HONOURED) {
            const field = HONOURED[param as keyof typeof HONOURED]
            found[field] ??= field === 'hostname' ? value.replace(/%h/g, alias) : value
          }
        }
      }
      return found
    }
  }
}
