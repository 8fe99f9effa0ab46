import type { Host } from './settings'

/** A value quoted for the runner's shell: sh's single quotes, or cmd's double quotes on Windows. */
function quote(value: string, windows: boolean): string {
  return windows ? `"${value.replace(/"/g, '""')}"` : `'${value.replace(/'/g, `'\\''`)}'`
}

/**
 * OpenSSH's tokens in a ProxyCommand: %h host name, %p port, %r user, %n the name as written in
 * `hosts`, %% a percent sign. Values are quoted for the shell, so no host name can inject a command.
 */
export function substituteTokens(command: string, host: Host, windows = process.platform === 'win32'): string {
  return command.replace(/%(.)/g, (token, c: string) => {
    const value = { h: host.hostname, p: String(host.port), r: host.user, n: host.name }[c]
    if (c === '%') return '%'
    if (value === undefined) throw new Error(`unknown token ${token} in the proxy command (it takes %h, %p, %r, %n, %%)`)
    return quote(value, windows)
  })
}

/** A host's route in words, for dry-run: `runner → deploy@a → deploy@b → web1`. */
export function describeRoute(host: Host): string {
  const route = host.route
  if (!route) return `runner → ${host.name}`
  if (route.via === 'command') {
    let command = route.command
    try {
      command = substituteTokens(route.command, host)
    } catch {
      // The plan print shows it as written; connecting names the bad token.
    }
    return `runner → proxy command \`${command}\` → ${host.name}`
  }
  return ['runner', ...route.hops.map((h) => h.host.name), host.name].join(' → ')
}
