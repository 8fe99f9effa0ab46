import type { ParsedKey } from 'ssh2'
import type { HostKeyPolicy } from './host-keys'

/** One target host, resolved from the `hosts` input. */
export interface Host {
  /** The entry as written in `hosts`: the key used in logs, annotations and outputs. */
  name: string
  /** Login user (from the entry, else the `username` input). */
  user: string
  /** DNS name or IP address, without brackets. */
  hostname: string
  /** TCP port (from the entry, else the `port` input). */
  port: number
  /** Position in the `hosts` input, from 0. */
  index: number
}

/** Credentials tried in this order: private key, agent, password (and keyboard-interactive). */
export interface Auth {
  /** Parsed once up front so a bad key or passphrase is an input error, and no host re-parses it. */
  privateKey?: ParsedKey
  password?: string
  /** Agent socket path (SSH_AUTH_SOCK) when `agent` is on. */
  agent?: string
}

/** A script run on the host. Later plans add more kinds beside it. */
export interface RunStep {
  kind: 'run'
  name: string
  script: string
  /** Extra environment for this step, exported before the script. */
  env: Record<string, string>
  /** 0 means no limit. */
  timeoutMs: number
  retries: number
  retryDelayMs: number
}

export type Step = RunStep

/** Everything the action needs, parsed and validated before any connection is made. */
export interface Settings {
  hosts: Host[]
  auth: Auth
  hostKeys: HostKeyPolicy
  steps: Step[]
  /** Remote interpreter of a step's script, e.g. `bash -e`, as words for the login shell. */
  shell: string
  /** Most hosts in flight at once. */
  concurrency: number
  /** One connection attempt: TCP, banner, key exchange and authentication. */
  connectTimeoutMs: number
  /** Further attempts after a transient connection failure. */
  connectRetries: number
  /** 0 turns keepalive off. */
  keepaliveIntervalMs: number
  keepaliveCountMax: number
}
