import { existsSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { PageantAgent, type ParsedKey } from 'ssh2'
import { parseFingerprints, parseKnownHosts, type HostKeyPolicy, type KnownHost } from './known-hosts'
import { parseHostEntry, parseHosts, parsePort, parseUser } from './inventory'
import { substituteTokens } from './route'
import { parseSshConfig, type SshConfig } from './ssh-config'
import { parseBatchSpec, parseMaxFailures, parseShard, parseSteps, planBatches, shardHosts, singleStep, type StepDefaults } from './plan'
import type { Auth, Host, ProxyJump, Settings, Step, UserCertificate } from './settings'
import { readUserCertificate, type CertificateKey } from './user-certificate'
import { CERTIFICATE_BYTES, CertificateError, parseCertificateText } from '../base/ssh-certificate'
import { registerSecretLines } from '../base/secrets'
import { InputError } from './input-error'
import { Inputs } from './input-names'
import { InputValues, SECRET_INPUTS } from './input-values'
import { resolveSources } from './local-files'
import { parsePrivateKey } from './private-key'
import { Workspace, readRegularFile } from '../base/workspace'

type Env = NodeJS.ProcessEnv

/** Node turns a timer longer than 2^31-1 ms into 1 ms: a longer duration would fire at once. */
const MAX_DURATION_MS = 2 ** 31 - 1

/** Parses `90`, `90s`, `10m`, `1.5h` into milliseconds, up to MAX_DURATION_MS. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/i.exec(text)
  if (!m) {
    throw new Error(
      text.startsWith('-') ? `'${text}' is negative` : `'${text}' is not a duration (seconds, or a number with s, m or h: 90, 90s, 10m)`
    )
  }
  const unit = { s: 1_000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's').toLowerCase() as 's' | 'm' | 'h']
  const ms = Math.round(Number(m[1]) * unit)
  if (ms > MAX_DURATION_MS)
    throw new Error(`'${text}' is longer than the longest wait a timer can hold (${(MAX_DURATION_MS / 3_600_000) | 0}h, about 24 days)`)
  return ms
}

/** Parses a whole number no smaller than `min`. */
export function parseCount(text: string, min: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
    throw new Error(`'${text}' is not a whole number of at least ${min}`)
  }
  return Number(text)
}

/** Parses `NAME=value` lines (blank lines and `#` comments skipped). */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return
    const eq = line.indexOf('=')
    const name = eq > 0 ? line.slice(0, eq).trim() : ''
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new Error(`line ${i + 1} is not NAME=value with NAME made of letters, digits and _`)
    }
    env[name] = line.slice(eq + 1)
  })
  return env
}

function oneOf<T extends string>(choices: readonly T[]): (text: string) => T {
  return (text) => {
    if (!choices.includes(text as T)) throw new Error(`'${text}' is not one of ${choices.join(', ')}`)
    return text as T
  }
}

/** A true/false input (any case), false when not given. */
function flagInput(inputs: InputValues, name: Inputs): boolean {
  return inputs.field(name, (t) => oneOf(['true', 'false'] as const)(t.toLowerCase()) === 'true', 'false')
}

/** Registers every secret input with the runner's masker, before anything can be logged. */
function maskSecrets(inputs: InputValues): void {
  for (const name of SECRET_INPUTS) registerSecretLines(inputs.text(name))
}

/** The Windows OpenSSH agent's named pipe, used by `agent: auto` when SSH_AUTH_SOCK is not set. */
const WINDOWS_AGENT_PIPE = '\\\\.\\pipe\\openssh-ssh-agent'

/** The agent to use: SSH_AUTH_SOCK, Windows' OpenSSH agent, or Pageant; undefined for none. */
function readAgent(inputs: InputValues, env: Env, platform: NodeJS.Platform): string | undefined {
  const mode = inputs.field(Inputs.Agent, oneOf(['auto', 'true', 'false', 'pageant'] as const), 'auto')
  if (mode === 'false') return undefined
  if (mode === 'pageant') {
    if (platform !== 'win32') throw new InputError(Inputs.Agent, `'pageant' is for Windows runners (this one is ${platform})`)
    // ssh2 after 1.17 has no Pageant (its main branch removed it 2026-05-27); without it ssh2 would
    // take 'pageant' for the path of a Cygwin agent's socket.
    if (typeof PageantAgent !== 'function') {
      throw new InputError(
        Inputs.Agent,
        "'pageant' is not available: the ssh2 library in this build of the action has no Pageant support; load the key into Windows' OpenSSH agent and use agent: auto, or give private-key"
      )
    }
    return 'pageant'
  }
  const windowsAgent = platform === 'win32' && existsSync(WINDOWS_AGENT_PIPE) ? WINDOWS_AGENT_PIPE : undefined
  const socket = env.SSH_AUTH_SOCK || windowsAgent
  if (mode === 'true' && !socket) throw new InputError(Inputs.Agent, `'true' but SSH_AUTH_SOCK is not set (start an ssh-agent first)`)
  return socket
}

/**
 * Credentials for the hosts (`private-key`) or the bastions (`proxy-private-key`, else the same key).
 * The hosts' `password` goes to a bastion only when it shares the hosts' credentials (no
 * proxy-private-key): a credential goes only where its input says.
 * `required`: without an ssh config to name IdentityFiles, no credential at all is an input error.
 * `config`: an ssh config is given, so a certificate without a key input waits for the host's IdentityFile.
 */
function readAuth(
  inputs: InputValues,
  env: Env,
  keyInput: Inputs.PrivateKey | Inputs.ProxyPrivateKey,
  required: boolean,
  config: boolean,
  platform: NodeJS.Platform
): Auth {
  const keyFrom = inputs.given(keyInput) ? keyInput : Inputs.PrivateKey
  const keyText = inputs.text(keyFrom).trim()
  const passphrase = inputs.text(Inputs.Passphrase)
  const password = keyInput === Inputs.PrivateKey ? inputs.text(Inputs.Password) : ''
  const agent = readAgent(inputs, env, platform)
  const certFrom = keyInput === Inputs.PrivateKey ? Inputs.Certificate : Inputs.ProxyCertificate
  // With an ssh config (credentials not required here) the passphrase may be for an IdentityFile.
  if (passphrase && !keyText && required) throw new InputError(Inputs.Passphrase, 'given without private-key')
  const privateKey = keyText ? parsePrivateKey(keyFrom, keyText, passphrase) : undefined
  const certificate = inputCertificate(certFrom, inputs.text(certFrom), privateKey, agent, config)
  const auth: Auth = {
    privateKey,
    ...(certificate ? { certificate } : {}),
    password: password || undefined,
    agent
  }
  if (required && !auth.privateKey && !auth.password && !auth.agent) {
    throw new InputError(keyInput, 'no credentials: set private-key, password, or agent (with SSH_AUTH_SOCK set)')
  }
  return auth
}

/**
 * A certificate input, checked against its key now: the key input's, else (no ssh config to name an
 * IdentityFile for it) the agent's. Undefined when there is none, or when it waits for each host's
 * IdentityFile (`deferred`: an ssh config is given and no key input), paired by `withIdentity`.
 */
function inputCertificate(
  input: Inputs.Certificate | Inputs.ProxyCertificate,
  text: string,
  key: ParsedKey | undefined,
  agent: string | undefined,
  deferred: boolean
): UserCertificate | undefined {
  if (!text || (!key && deferred)) return undefined
  return readUserCertificate(input, text, key ?? (agent ? 'agent' : undefined), Date.now(), input)
}

/** The most of an IdentityFile read: an RSA key of 16384 bits is about 13 KiB. */
const KEY_FILE_BYTES = 256 * 1024
/** The most of ~/.ssh/known_hosts read: some 50,000 lines. */
const KNOWN_HOSTS_BYTES = 16 * 1024 * 1024

/** Reads an ssh config IdentityFile for `name` (a host or hop), with the passphrase input. */
function identityFile(paths: string[], name: string, passphrase: string): { key: ParsedKey; path: string } | undefined {
  const path = paths.find((p) => existsSync(p))
  if (path === undefined) return undefined
  try {
    // A key file's text is as secret as the private-key input's, though no one typed it into a secret.
    const text = readRegularFile(path, KEY_FILE_BYTES)
    registerSecretLines(text)
    return { key: parsePrivateKey(Inputs.SshConfig, text, passphrase), path }
  } catch (err) {
    const problem = err instanceof InputError ? err.problem : (err as Error).message
    throw new InputError(Inputs.SshConfig, `IdentityFile ${path} of ${name}: ${problem}`)
  }
}

/**
 * The user certificate of a host's key from its ssh config: its CertificateFiles that exist, then
 * `<IdentityFile>-cert.pub` beside the key file, as OpenSSH loads them, tried in that order: the first
 * for the host's key (the agent's key, when no key is in memory: ssh_config(5) lets the agent hold
 * it). One for another key, or with no key to go with it, is skipped with a warning naming it.
 * Checked as the input is.
 */
function certificateFile(
  paths: string[],
  keyPath: string | undefined,
  name: string,
  key: CertificateKey | undefined,
  warnings: string[]
): UserCertificate | undefined {
  for (const path of [...paths, ...(keyPath ? [`${keyPath}-cert.pub`] : [])].filter((p) => existsSync(p))) {
    const origin = `CertificateFile ${path} of ${name}`
    if (!key) {
      warnings.push(`ssh-config: ${origin} was skipped: no private key goes with it (no IdentityFile, private-key or agent)`)
      continue
    }
    // A -cert.pub file is the certificate in base64 (4/3 of its bytes) and a comment.
    const text = wrap(Inputs.SshConfig, () => readRegularFile(path, CERTIFICATE_BYTES * 2))
    if (key !== 'agent' && !certifies(text, key)) {
      warnings.push(`ssh-config: ${origin} was skipped: it certifies another key than ${keyPath ?? 'private-key'}`)
      continue
    }
    return readUserCertificate(Inputs.SshConfig, text, key, Date.now(), `ssh-config ${origin}`, `${origin}: `)
  }
  return undefined
}

/** Whether a certificate's text certifies `key`; an unreadable one is left for readUserCertificate to name. */
function certifies(text: string, key: ParsedKey): boolean {
  try {
    return parseCertificateText(text).publicKey.equals(key.getPublicSSH())
  } catch (err) {
    if (err instanceof CertificateError) return true
    throw err
  }
}

/**
 * Each host's route and its own settings: the proxy-command or proxy-jump input for every host (an
 * explicit input wins over the config), else its ssh config's ProxyCommand or ProxyJump (hops
 * resolved through the config too, `none` for direct); IdentityFile when private-key is not given,
 * ConnectTimeout and ServerAlive* when their inputs are not given.
 */
function resolveRoutes(
  inputs: InputValues,
  hosts: Host[],
  config: SshConfig | undefined,
  auth: Auth,
  hopAuth: Auth,
  username: string | undefined,
  warnings: string[]
): Host[] {
  const command = inputs.text(Inputs.ProxyCommand)
  const jump = inputs.text(Inputs.ProxyJump)
  if (command && jump) throw new InputError(Inputs.ProxyCommand, 'give proxy-command or proxy-jump, not both')
  if (command) inputs.field(Inputs.ProxyCommand, (t) => substituteTokens(t, hosts[0]), '')
  const chains = new Map<string, ProxyJump[]>()
  const chain = (text: string, input: string): ProxyJump[] => {
    let hops = chains.get(text)
    if (!hops) {
      const parse = (): Host[] => {
        if (/\s/.test(text.trim())) throw new Error(`'${text}': hops are separated by commas, as OpenSSH writes them (a,b,c)`)
        return parseHosts(text, { user: username, config })
      }
      hops = (input === Inputs.ProxyJump ? inputs.field(Inputs.ProxyJump, parse, '') : wrap(input, parse)).map((host) => ({
        host,
        auth: withIdentity(
          host,
          hopAuth,
          inputs.given(Inputs.ProxyPrivateKey) || inputs.given(Inputs.PrivateKey),
          // A bastion with credentials of its own takes only its own certificate input.
          inputs.given(Inputs.ProxyPrivateKey) || inputs.given(Inputs.ProxyCertificate) ? Inputs.ProxyCertificate : Inputs.Certificate
        )
      }))
      chains.set(text, hops)
    }
    return hops
  }
  /**
   * The host's IdentityFile when no key input is given, paired with the certificate input (`certInput`)
   * when one is given, else with its CertificateFile.
   */
  const withIdentity = (host: Host, base: Auth, keyGiven: boolean, certInput: Inputs.Certificate | Inputs.ProxyCertificate): Auth => {
    if (!config) return base
    const entry = config.resolve(parseHostEntry(host.name).hostname, host.user)
    const found = keyGiven ? undefined : identityFile(entry.identityFiles, host.name, inputs.text(Inputs.Passphrase))
    let auth = found ? { ...base, privateKey: found.key, certificate: undefined } : base
    const key = auth.privateKey ?? (auth.agent ? 'agent' : undefined)
    const certText = inputs.text(certInput)
    const certificate = certText
      ? (auth.certificate ??
        readUserCertificate(
          certInput,
          certText,
          key,
          Date.now(),
          certInput,
          found ? `with IdentityFile ${found.path} of ${host.name}: ` : ''
        ))
      : certificateFile(entry.certificateFiles, found?.path, host.name, key, warnings)
    if (certificate) auth = { ...auth, certificate }
    return auth
  }
  return hosts.map((host) => {
    const entry = config?.resolve(parseHostEntry(host.name).hostname, host.user)
    let route: Host['route']
    if (command) route = { via: 'command', command }
    else if (jump) route = { via: 'jump', hops: chain(jump, Inputs.ProxyJump) }
    else if (entry?.proxyCommand && entry.proxyCommand !== 'none') route = { via: 'command', command: entry.proxyCommand }
    else if (entry?.proxyJump && entry.proxyJump !== 'none')
      route = { via: 'jump', hops: chain(entry.proxyJump, `ssh-config ProxyJump of ${host.name}`) }
    const hostAuth = withIdentity(host, auth, inputs.given(Inputs.PrivateKey), Inputs.Certificate)
    if (!hostAuth.privateKey && !hostAuth.password && !hostAuth.agent) {
      throw new InputError(
        Inputs.PrivateKey,
        `no credentials for ${host.name}: set private-key, password, agent, or an IdentityFile for it in ssh-config`
      )
    }
    const overrides: Host['overrides'] = {
      ...(hostAuth !== auth ? { auth: hostAuth } : {}),
      ...(entry?.connectTimeout !== undefined && !inputs.given(Inputs.ConnectTimeout)
        ? { connectTimeoutMs: wrap(Inputs.SshConfig, () => parseDuration(entry.connectTimeout as string)) }
        : {}),
      ...(entry?.serverAliveInterval !== undefined && !inputs.given(Inputs.KeepaliveInterval)
        ? { keepaliveIntervalMs: wrap(Inputs.SshConfig, () => parseDuration(entry.serverAliveInterval as string)) }
        : {}),
      ...(entry?.serverAliveCountMax !== undefined && !inputs.given(Inputs.KeepaliveCountMax)
        ? { keepaliveCountMax: wrap(Inputs.SshConfig, () => parseCount(entry.serverAliveCountMax as string, 1)) }
        : {})
    }
    return { ...host, ...(route ? { route } : {}), ...(Object.keys(overrides).length ? { overrides } : {}) }
  })
}

/** Runs `parse`, turning its failure into an InputError for `input` (a name or a description). */
function wrap<T>(input: string, parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    if (err instanceof InputError) throw err
    throw new InputError(input, (err as Error).message)
  }
}

function readHostKeys(inputs: InputValues): HostKeyPolicy {
  const mode = inputs.field(Inputs.HostKeyCheck, oneOf(['strict', 'off'] as const), 'strict')
  let knownHosts: KnownHost[] = inputs.field(Inputs.KnownHosts, (t) => parseKnownHosts(t, Inputs.KnownHosts, true), '')
  const fingerprints = inputs.field(Inputs.Fingerprint, parseFingerprints, '')
  // The runner's own file only when the workflow names no key at all: a pin must narrow trust, not
  // add to whatever earlier jobs or tools left in ~/.ssh/known_hosts.
  if (!inputs.given(Inputs.KnownHosts) && fingerprints.length === 0) {
    const file = join(homedir(), '.ssh', 'known_hosts')
    if (existsSync(file)) knownHosts = parseKnownHosts(readRegularFile(file, KNOWN_HOSTS_BYTES), '~/.ssh/known_hosts', false)
  }
  return { mode, knownHosts, fingerprints }
}

/** The most of a `run-file` script read: a script goes whole to every host, it is no payload (upload is). */
const RUN_FILE_BYTES = 1024 * 1024

/** The plan (`run`, `run-file` or `steps`), and the `on-failure` and `always` steps. */
function readSteps(inputs: InputValues, workspace: Workspace): { steps: Step[]; onFailure: Step[]; always: Step[] } {
  const script = inputs.text(Inputs.Run) // byte for byte: no trimming
  const runFile = inputs.text(Inputs.RunFile)
  const yaml = inputs.text(Inputs.Steps)
  const defaults: StepDefaults = {
    capture: flagInput(inputs, Inputs.Capture),
    pty: flagInput(inputs, Inputs.Pty),
    env: inputs.field(Inputs.Env, parseEnv, ''),
    timeoutMs: inputs.field(Inputs.Timeout, parseDuration, '0'),
    retries: inputs.field(Inputs.Retries, (t) => parseCount(t, 0), '0'),
    retryDelayMs: inputs.field(Inputs.RetryDelay, parseDuration, '5s')
  }
  const given = [script.trim() && Inputs.Run, runFile && Inputs.RunFile, yaml.trim() && Inputs.Steps].filter(Boolean)
  if (given.length > 1) throw new InputError(given[1] as string, `give one of run, run-file and steps, not ${given.join(' and ')}`)
  // Runner files only through the workspace: a link or `..` leading out is an error naming it.
  const parsers = {
    duration: parseDuration,
    count: parseCount,
    upload: (from: string[], to: string, exclude: string[]) => resolveSources(from, to, workspace, exclude),
    file: (path: string) => workspace.readText(path, RUN_FILE_BYTES)
  }
  const list = (name: Inputs.OnFailure | Inputs.Always): Step[] => {
    const text = inputs.text(name)
    return text.trim() === '' ? [] : inputs.field(name, () => parseSteps(text, defaults, parsers), '')
  }
  const hooks = { onFailure: list(Inputs.OnFailure), always: list(Inputs.Always) }
  if (yaml.trim() !== '') return { steps: inputs.field(Inputs.Steps, () => parseSteps(yaml, defaults, parsers), ''), ...hooks }
  if (runFile)
    return {
      steps: [
        singleStep(
          inputs.field(Inputs.RunFile, (t) => workspace.readText(t, RUN_FILE_BYTES), ''),
          defaults,
          runFile
        )
      ],
      ...hooks
    }
  if (script.trim() === '') throw new InputError(Inputs.Run, 'no script given: set run, run-file, or steps')
  return { steps: [singleStep(script, defaults)], ...hooks }
}

/**
 * Where the results file goes, checked before anything connects: inside the workspace (no link or `..`
 * leading out), not a directory, and every part of the way that exists a directory, so the write after
 * the run cannot fail on the path.
 */
function resultsPath(text: string, workspace: Workspace): string {
  const path = workspace.resolve(text)
  // The nearest part of the way that exists (links inside followed) decides.
  for (let at = path; at !== dirname(at); at = dirname(at)) {
    let isDir: boolean
    try {
      isDir = statSync(at).isDirectory()
    } catch {
      continue // created when the file is written
    }
    if (at === path && isDir) throw new Error(`'${text}' is a directory; name a file, e.g. ssh-fleet-results/shard-1.json`)
    if (at !== path && !isDir) throw new Error(`'${text}': ${workspace.show(at)} is not a directory, so no file can be written below it`)
    break
  }
  return path
}

/** Reads and validates every input. Throws InputError naming the first bad input. */
export function getSettings(env: Env = process.env, platform: NodeJS.Platform = process.platform): Settings {
  const inputs = new InputValues()
  maskSecrets(inputs)
  const username = inputs.field(Inputs.Username, (t) => (t === '' ? undefined : parseUser(t)), '')
  const config = inputs.field(Inputs.SshConfig, (t) => (t.trim() === '' ? undefined : parseSshConfig(t)), '')
  // The port input wins over the ssh config only when it is given.
  const port = inputs.field(Inputs.Port, (t) => (t === '' ? undefined : parsePort(t)), '')
  const auth = readAuth(inputs, env, Inputs.PrivateKey, config === undefined, config !== undefined, platform)
  const hopAuth = inputs.given(Inputs.ProxyPrivateKey)
    ? readAuth(inputs, env, Inputs.ProxyPrivateKey, false, config !== undefined, platform)
    : inputs.given(Inputs.ProxyCertificate)
      ? {
          ...auth,
          certificate: inputCertificate(
            Inputs.ProxyCertificate,
            inputs.text(Inputs.ProxyCertificate),
            auth.privateKey,
            auth.agent,
            config !== undefined
          )
        }
      : auth
  const parsed = inputs.field(Inputs.Hosts, (t) => parseHosts(t, { user: username, port, config }), '')
  const certificateWarnings: string[] = []
  const allHosts = resolveRoutes(inputs, parsed, config, auth, hopAuth, username, certificateWarnings)
  const shard = inputs.field(Inputs.Shard, (t) => (t === '' ? undefined : parseShard(t)), '')
  const hosts = shardHosts(allHosts, shard)
  const workspace = Workspace.fromEnv(env)
  const hostKeys = readHostKeys(inputs)
  const { steps, onFailure, always } = readSteps(inputs, workspace)
  const forwardAgent = flagInput(inputs, Inputs.ForwardAgent)
  if (forwardAgent && !auth.agent)
    throw new InputError(
      Inputs.ForwardAgent,
      'true, but there is no agent to forward (start an ssh-agent so SSH_AUTH_SOCK is set, and leave agent on auto or true)'
    )
  const sudoPassword = inputs.text(Inputs.SudoPassword) || undefined
  // sudo reads one line: a second one would reach the shell, as root where sudo asks no password.
  if (sudoPassword && /[\r\n]/.test(sudoPassword))
    throw new InputError(Inputs.SudoPassword, 'has a line break; sudo reads one line, and the rest would run as a command')
  const batchSpec = inputs.field(Inputs.Batch, (t) => (t === '' ? undefined : parseBatchSpec(t)), '')
  const shell = inputs.field(
    Inputs.Shell,
    (t) => {
      if (/[\r\n]/.test(t) || t.trim() === '') throw new Error('must be one line, e.g. bash -e or sh -e')
      return t.trim()
    },
    'bash -e'
  )
  return {
    workspace,
    hosts,
    inventory: allHosts.map((h) => h.name),
    shard,
    resultsFile: inputs.field(Inputs.ResultsFile, (t) => (t === '' ? undefined : resultsPath(t, workspace)), ''),
    batches: planBatches(hosts, batchSpec),
    strategy: inputs.field(Inputs.Strategy, oneOf(['host', 'step'] as const), 'host'),
    maxFailures: inputs.field(Inputs.MaxFailures, (t) => (t === '' ? Infinity : parseMaxFailures(t, hosts.length)), batchSpec ? '0' : ''),
    dryRun: flagInput(inputs, Inputs.DryRun),
    sshConfigWarnings: [...(config?.warnings ?? []), ...new Set(certificateWarnings)],
    auth,
    hostKeys,
    steps,
    onFailure,
    always,
    sudoPassword,
    forwardAgent,
    legacyAlgorithms: flagInput(inputs, Inputs.LegacyAlgorithms),
    shell,
    concurrency: inputs.field(Inputs.Concurrency, (t) => parseCount(t, 1), '10'),
    connectTimeoutMs: inputs.field(
      Inputs.ConnectTimeout,
      (t) => {
        const ms = parseDuration(t)
        if (ms === 0) throw new Error(`'${t}' must be more than 0`)
        return ms
      },
      '20s'
    ),
    connectRetries: inputs.field(Inputs.ConnectRetries, (t) => parseCount(t, 0), '4'),
    keepaliveIntervalMs: inputs.field(Inputs.KeepaliveInterval, parseDuration, '15s'),
    keepaliveCountMax: inputs.field(Inputs.KeepaliveCountMax, (t) => parseCount(t, 1), '3')
  }
}
