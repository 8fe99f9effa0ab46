import * as core from '@actions/core'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { utils, type ParsedKey } from 'ssh2'
import { parseFingerprints, parseKnownHosts, type HostKeyPolicy, type KnownHost } from '../ssh/host-keys'
import { parseHosts, parsePort, parseUser } from './inventory'
import { parseBatchSpec, parseMaxFailures, parseShard, parseSteps, planBatches, shardHosts, singleStep, type StepDefaults } from './plan'
import type { Auth, ProxyJump, Settings, Step } from './settings'
import { registerSecret } from '../report/secrets'
import { InputError } from './input-error'
import { resolveUpload } from './local-files'

/** Inputs that are masked; their values are never quoted in a message. */
export const SECRET_INPUTS = ['private-key', 'passphrase', 'password', 'proxy-private-key', 'sudo-password'] as const

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
  if (ms > MAX_DURATION_MS) throw new Error(`'${text}' is longer than the longest wait a timer can hold (${MAX_DURATION_MS / 3_600_000 | 0}h, about 24 days)`)
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

/** Reads one input and converts it, turning a failure into an InputError that names the input. */
function field<T>(name: string, parse: (text: string) => T, fallback: string): T {
  const text = core.getInput(name) || fallback
  try {
    return parse(text)
  } catch (err) {
    throw new InputError(name, (err as Error).message)
  }
}

function oneOf<T extends string>(choices: readonly T[]): (text: string) => T {
  return (text) => {
    if (!choices.includes(text as T)) throw new Error(`'${text}' is not one of ${choices.join(', ')}`)
    return text as T
  }
}

/**
 * A secret input exactly as given: a password or passphrase may begin or end with spaces. Only the
 * line break a YAML block scalar (`password: |`) adds at the end goes.
 */
function secretInput(name: (typeof SECRET_INPUTS)[number]): string {
  return core.getInput(name, { trimWhitespace: false }).replace(/\r?\n$/, '')
}

/** Registers every secret input with the runner's masker, before anything can be logged. */
function maskSecrets(): void {
  const values = new Set<string>()
  for (const name of SECRET_INPUTS) {
    const value = secretInput(name)
    if (value.trim() === '') continue
    values.add(value)
    // The runner masks line by line, so each line of a multi-line key must be a secret of its own.
    for (const line of value.split(/\r?\n/)) if (line.trim().length > 0) values.add(line.trim())
  }
  values.forEach(registerSecret)
}

function parsePrivateKey(input: string, text: string, passphrase: string): ParsedKey {
  const parsed = utils.parseKey(text.trim() + '\n', passphrase || undefined)
  if (parsed instanceof Error) {
    throw new InputError(input, `the private key could not be read${passphrase ? ' with the given passphrase' : ''}: ${parsed.message}`)
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (!key.isPrivateKey()) throw new InputError(input, 'this is a public key (a .pub file or an authorized_keys line); give the private key')
  return key
}

/** Credentials for the hosts (`private-key`) or the bastion (`proxy-private-key`, else the same key). */
function readAuth(env: Env, keyInput: 'private-key' | 'proxy-private-key'): Auth {
  const keyText = core.getInput(keyInput) || core.getInput('private-key')
  const passphrase = secretInput('passphrase')
  const password = secretInput('password')
  const agentMode = field('agent', oneOf(['auto', 'true', 'false'] as const), 'auto')
  const socket = env.SSH_AUTH_SOCK
  if (agentMode === 'true' && !socket) throw new InputError('agent', `'true' but SSH_AUTH_SOCK is not set (start an ssh-agent first)`)
  if (passphrase && !keyText) throw new InputError('passphrase', 'given without private-key')
  const auth: Auth = {
    privateKey: keyText ? parsePrivateKey(core.getInput(keyInput) ? keyInput : 'private-key', keyText, passphrase) : undefined,
    password: password || undefined,
    agent: agentMode !== 'false' && socket ? socket : undefined
  }
  if (!auth.privateKey && !auth.password && !auth.agent) {
    throw new InputError(keyInput, 'no credentials: set private-key, password, or agent (with SSH_AUTH_SOCK set)')
  }
  return auth
}

function readHostKeys(): HostKeyPolicy {
  const mode = field('host-key-check', oneOf(['strict', 'off'] as const), 'strict')
  let knownHosts: KnownHost[] = field('known-hosts', (t) => parseKnownHosts(t, 'known-hosts', true), '')
  const fingerprints = field('fingerprint', parseFingerprints, '')
  // The runner's own file only when the workflow names no key at all: a pin must narrow trust, not
  // add to whatever earlier jobs or tools left in ~/.ssh/known_hosts.
  if (core.getInput('known-hosts') === '' && fingerprints.length === 0) {
    const file = join(homedir(), '.ssh', 'known_hosts')
    if (existsSync(file)) knownHosts = parseKnownHosts(readFileSync(file, 'utf8'), '~/.ssh/known_hosts', false)
  }
  return { mode, knownHosts, fingerprints }
}

/** Reads a script file from the workspace; missing or unreadable throws, naming the path. */
function scriptFile(path: string, workspace: string): string {
  const full = resolve(workspace, path)
  try {
    if (!statSync(full).isFile()) throw new Error('not a file')
    return readFileSync(full, 'utf8')
  } catch (err) {
    throw new Error(`'${path}' cannot be read (${full}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}

/** The plan (`run`, `run-file` or `steps`), and the `on-failure` and `always` steps. */
function readSteps(env: Env): { steps: Step[]; onFailure: Step[]; always: Step[] } {
  const script = core.getInput('run', { trimWhitespace: false }) // byte for byte: no trimming
  const runFile = core.getInput('run-file')
  const yaml = core.getInput('steps', { trimWhitespace: false })
  const defaults: StepDefaults = {
    capture: field('capture', (t) => oneOf(['true', 'false'] as const)(t.toLowerCase()) === 'true', 'false'),
    env: field('env', () => parseEnv(core.getInput('env', { trimWhitespace: false })), ''),
    timeoutMs: field('timeout', parseDuration, '0'),
    retries: field('retries', (t) => parseCount(t, 0), '0'),
    retryDelayMs: field('retry-delay', parseDuration, '5s')
  }
  const given = [script.trim() && 'run', runFile && 'run-file', yaml.trim() && 'steps'].filter(Boolean)
  if (given.length > 1) throw new InputError(given[1] as string, `give one of run, run-file and steps, not ${given.join(' and ')}`)
  const workspace = env.GITHUB_WORKSPACE || process.cwd()
  const parsers = {
    duration: parseDuration,
    count: parseCount,
    upload: (from: string, to: string, exclude: string[]) => resolveUpload(from, to, workspace, exclude),
    file: (path: string) => scriptFile(path, workspace)
  }
  const list = (name: 'on-failure' | 'always'): Step[] => {
    const text = core.getInput(name, { trimWhitespace: false })
    return text.trim() === '' ? [] : field(name, () => parseSteps(text, defaults, parsers), '')
  }
  const hooks = { onFailure: list('on-failure'), always: list('always') }
  if (yaml.trim() !== '') return { steps: field('steps', () => parseSteps(yaml, defaults, parsers), ''), ...hooks }
  if (runFile) return { steps: [singleStep(field('run-file', (t) => scriptFile(t, workspace), ''), defaults, runFile)], ...hooks }
  if (script.trim() === '') throw new InputError('run', 'no script given: set run, run-file, or steps')
  return { steps: [singleStep(script, defaults)], ...hooks }
}

/** Where the results file goes: relative to the workspace, never onto a directory. */
function resultsPath(text: string, workspace: string): string {
  const path = resolve(workspace, text)
  if (existsSync(path) && statSync(path).isDirectory()) throw new Error(`'${text}' is a directory; name a file, e.g. ssh-fleet-results/shard-1.json`)
  return path
}

function readProxyJump(env: Env, defaults: { user?: string }): ProxyJump | undefined {
  const text = core.getInput('proxy-jump')
  if (text === '') return undefined
  const [host] = field('proxy-jump', (t) => parseHosts(t, { user: defaults.user, port: 22 }), '')
  if (/[\s,]/.test(text)) throw new InputError('proxy-jump', `'${text}' must be one [user@]host[:port]`)
  return { host, auth: readAuth(env, 'proxy-private-key') }
}

/** Reads and validates every input. Throws InputError naming the first bad input. */
export function getSettings(env: Env = process.env): Settings {
  maskSecrets()
  const username = field('username', (t) => (t === '' ? undefined : parseUser(t)), '')
  const port = field('port', parsePort, '22')
  const allHosts = field('hosts', (t) => parseHosts(t, { user: username, port }), '')
  const shard = field('shard', (t) => (t === '' ? undefined : parseShard(t)), '')
  const hosts = shardHosts(allHosts, shard)
  const workspace = env.GITHUB_WORKSPACE || process.cwd()
  const auth = readAuth(env, 'private-key')
  const hostKeys = readHostKeys()
  const { steps, onFailure, always } = readSteps(env)
  const flagInput = (name: string): boolean => field(name, (t) => oneOf(['true', 'false'] as const)(t.toLowerCase()) === 'true', 'false')
  const forwardAgent = flagInput('forward-agent')
  if (forwardAgent && !auth.agent) throw new InputError('forward-agent', 'true, but there is no agent to forward (start an ssh-agent so SSH_AUTH_SOCK is set, and leave agent on auto or true)')
  const sudoPassword = secretInput('sudo-password') || undefined
  const batchSpec = field('batch', (t) => (t === '' ? undefined : parseBatchSpec(t)), '')
  const shell = field('shell', (t) => {
    if (/[\r\n]/.test(t) || t.trim() === '') throw new Error('must be one line, e.g. bash -e or sh -e')
    return t.trim()
  }, 'bash -e')
  return {
    hosts,
    inventory: allHosts.map((h) => h.name),
    shard,
    resultsFile: field('results-file', (t) => (t === '' ? undefined : resultsPath(t, workspace)), ''),
    batches: planBatches(hosts, batchSpec),
    strategy: field('strategy', oneOf(['host', 'step'] as const), 'host'),
    maxFailures: field('max-failures', (t) => (t === '' ? Infinity : parseMaxFailures(t, hosts.length)), batchSpec ? '0' : ''),
    dryRun: field('dry-run', (t) => oneOf(['true', 'false'] as const)(t.toLowerCase()) === 'true', 'false'),
    proxyJump: readProxyJump(env, { user: username }),
    auth,
    hostKeys,
    steps,
    onFailure,
    always,
    sudoPassword,
    forwardAgent,
    legacyAlgorithms: flagInput('legacy-algorithms'),
    shell,
    concurrency: field('concurrency', (t) => parseCount(t, 1), '10'),
    connectTimeoutMs: field('connect-timeout', (t) => {
      const ms = parseDuration(t)
      if (ms === 0) throw new Error(`'${t}' must be more than 0`)
      return ms
    }, '20s'),
    connectRetries: field('connect-retries', (t) => parseCount(t, 0), '4'),
    keepaliveIntervalMs: field('keepalive-interval', parseDuration, '15s'),
    keepaliveCountMax: field('keepalive-count-max', (t) => parseCount(t, 1), '3')
  }
}
