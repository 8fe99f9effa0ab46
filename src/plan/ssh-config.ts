import { homedir } from 'node:os'
import SSHConfig from 'ssh-config'

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
  connectTimeout?: string
  serverAliveInterval?: string
  serverAliveCountMax?: string
  hostKeyAlias?: string
}

/** The keywords honoured; every other one is named in a warning, never silently dropped. */
const HONOURED = new Set([
  'host',
  'match',
  'hostname',
  'user',
  'port',
  'proxyjump',
  'proxycommand',
  'identityfile',
  'connecttimeout',
  'serveraliveinterval',
  'serveralivecountmax',
  'hostkeyalias'
])

/** OpenSSH-compatible resolution of `ssh-config` text; `warnings` names what it does not honour. */
export interface SshConfig {
  resolve(alias: string, user?: string): ConfigHost
  warnings: string[]
}

function one(value: unknown): string | undefined {
  const v = Array.isArray(value) ? value[0] : value
  return typeof v === 'string' ? v : undefined
}

/**
 * Parses OpenSSH client configuration text (the `ssh-config` npm package): `Host` patterns with `*`,
 * `?` and `!`, `Match host` and `Match user`, first value wins. `Match exec` is never run (it would
 * run commands on the runner) and is warned about, like every keyword not honoured.
 */
export function parseSshConfig(text: string): SshConfig {
  const config = SSHConfig.parse(text)
  const unsupported = new Set<string>()
  const visit = (lines: typeof config): void => {
    for (const line of lines) {
      if (line.type !== SSHConfig.DIRECTIVE) continue
      const param = line.param.toLowerCase()
      if (!HONOURED.has(param)) unsupported.add(line.param)
      if (param === 'match' && /\bexec\b/i.test(JSON.stringify(line.value))) unsupported.add('Match exec')
      if ('config' in line) visit(line.config as typeof config)
    }
  }
  visit(config)
  const warnings = [...unsupported].map((k) => `ssh-config: ${k} is not supported by ssh-fleet and was ignored`)
  const expand = (path: string): string => (path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path)
  return {
    warnings,
    resolve(alias, user) {
      const c = config.compute({ Host: alias, ...(user ? { User: user } : {}) }, { ignoreCase: true, matchExec: false }) as Record<
        string,
        unknown
      >
      const identity = c.identityfile
      return {
        hostname: one(c.hostname)?.replace(/%h/g, alias),
        user: one(c.user),
        port: one(c.port),
        proxyJump: one(c.proxyjump),
        proxyCommand: typeof c.proxycommand === 'string' ? c.proxycommand : one(c.proxycommand),
        identityFiles: (Array.isArray(identity) ? identity : identity ? [identity] : []).map((p) => expand(String(p))),
        connectTimeout: one(c.connecttimeout),
        serverAliveInterval: one(c.serveraliveinterval),
        serverAliveCountMax: one(c.serveralivecountmax),
        hostKeyAlias: one(c.hostkeyalias)
      }
    }
  }
}
