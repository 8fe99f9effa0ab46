import type { ParsedKey } from 'ssh2'
import type { SshCertificate } from '../base/ssh-certificate'
import type { HostKeyPolicy } from './known-hosts'
import type { Workspace } from '../base/workspace'

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
  /** How the runner reaches it; direct when absent. */
  route?: Route
  /** The name its key is looked up under in known_hosts instead of host and port (`HostKeyAlias`). */
  hostKeyAlias?: string
  /** Settings of its own, from the ssh config (IdentityFile, ConnectTimeout, ServerAlive*). */
  overrides?: Partial<Pick<Settings, 'auth' | 'connectTimeoutMs' | 'keepaliveIntervalMs' | 'keepaliveCountMax'>>
}

/**
 * How the runner reaches a host: directly, through a chain of bastions (`proxy-jump`, each hop's
 * connection shared by every host behind it), or through a command whose stdin and stdout carry the
 * SSH stream (`proxy-command`, OpenSSH's tokens not yet substituted).
 */
export type Route = { via: 'jump'; hops: ProxyJump[] } | { via: 'command'; command: string }

/** Credentials tried in this order: private key, agent, password (and keyboard-interactive). */
export interface Auth {
  /** Parsed once up front so a bad key or passphrase is an input error, and no host re-parses it. */
  privateKey?: ParsedKey
  /**
   * The user certificate of `privateKey` (`certificate`, `proxy-certificate`, ssh-config's
   * CertificateFile or `<IdentityFile>-cert.pub`), or of a key the agent holds, checked up front: a
   * user certificate for that key, valid now. Offered before the plain key, as OpenSSH does.
   */
  certificate?: UserCertificate
  password?: string
  /** Agent socket path (SSH_AUTH_SOCK) when `agent` is on. */
  agent?: string
}

/** A user certificate as read, and the key ssh2 offers it with. */
export interface UserCertificate {
  cert: SshCertificate
  /**
   * The private key presenting the certificate (plan/certified-key); with `agent`, the certificate
   * alone, offered through the agent, whose key for it signs (ssh/certificate-agent).
   */
  key: ParsedKey
  /** The private key is the agent's: no key in memory certifies it (a CertificateFile with no IdentityFile). */
  agent?: true
  /** Where it came from, for messages: `certificate`, `ssh-config CertificateFile /home/…`. */
  origin: string
}

/** What every step has. */
interface StepBase {
  name: string
  /** Extra environment for this step (the `env` input, then the step's own). */
  env: Record<string, string>
  /** A failure of this step is recorded but does not fail the host. */
  continueOnError: boolean
  /** Runs on the first host that reaches it; the others wait for it and skip it. */
  runOnce: boolean
  /** Most hosts running this step at once (inside the action's concurrency); undefined: no own limit. */
  concurrency?: number
}

/** What steps that can be retried have. */
interface Retried {
  /** 0 means no limit. */
  timeoutMs: number
  retries: number
  retryDelayMs: number
}

/** A script run on the host. */
export interface RunStep extends StepBase, Retried {
  kind: 'run'
  script: string
  /** The workspace file the script was read from (`run-file`), for the plan print. */
  runFile?: string
  /** Keep the whole stdout (up to 1 MiB) for the results and the `captured` output. */
  capture: boolean
  /** Run the script as root through sudo (with `sudo-password` when given, else `sudo -n`). */
  sudo: boolean
  /** Run it on a pseudo-terminal (`pty`): for sudo's `requiretty`; stderr then arrives merged into stdout. */
  pty: boolean
}

/** Reboot the host and wait until it is back with a new boot id (SPEC 3). */
export interface RebootStep extends StepBase {
  kind: 'reboot'
  /** The reboot command; undefined means `shutdown -r now`, behind `sudo -n` for users other than root. */
  command?: string
  /** The whole wait, from the command until the host is back and passes the test command. */
  timeoutMs: number
  bootIdCommand: string
  testCommand: string
  preDelayMs: number
  postDelayMs: number
}

/** A command run on the runner, once for each host at that point of its plan. */
export interface LocalStep extends StepBase, Retried {
  kind: 'local'
  /** A command line for the runner's shell: sh -c on Linux and macOS, cmd /c on Windows. */
  command: string
  /** Keep the whole stdout (up to 1 MiB) for the results and the `captured` output. */
  capture: boolean
}

/** One local file of an upload, and where it lands relative to the upload's `to`. */
export interface UploadFile {
  local: string
  /** Path relative to `to`, with / separators; empty when `to` names the file itself. */
  relative: string
  size: number
  /** The mode the file gets unless the step sets `mode`: 0755 when executable on the runner, else 0644. */
  mode: number
}

/** Files from the runner to the host over its connection (SFTP). */
export interface UploadStep extends StepBase, Retried {
  kind: 'upload'
  /** The `from` as written, for messages (a list's entries joined with ', '). */
  from: string
  /**
   * Remote destination: a directory, or, when `from` is one file, its path on the host unless it ends in /
   * or is a directory there (then the file goes inside, as scp and cp do).
   */
  to: string
  /** Resolved before any connection, so a missing source is an input error. */
  files: UploadFile[]
  /** Remote directories to create, relative to `to` (empty directories of the source included). */
  dirs: string[]
  /** File mode to set, e.g. 0o644; undefined gives each file its default (0644, or 0755 when executable). */
  mode?: number
  /** Remove remote files under `to` that are not in `from`. */
  delete: boolean
  /** Globs (relative to `from`) left out of the upload, and left alone on the host by `delete`. */
  exclude: string[]
  /**
   * When a file already on the host is left as it is (reported unchanged), not sent: `mtime`, a regular
   * file of the same size and modification time (to the second; as rsync's quick check); `checksum`,
   * of the same size and SHA-256 (the host's copy is read back); `none`, never (every file is sent).
   */
  compare: 'mtime' | 'checksum' | 'none'
}

export type Step = RunStep | RebootStep | LocalStep | UploadStep

/** One bastion of a `proxy-jump` chain. */
export interface ProxyJump {
  host: Host
  auth: Auth
}

/** Everything the action needs, parsed and validated before any connection is made. */
export interface Settings {
  /** The runner's files: GITHUB_WORKSPACE (where relative paths resolve) and RUNNER_TEMP, confined. */
  workspace: Workspace
  /** The hosts of this run: the `hosts` input, or this job's `shard` of it. */
  hosts: Host[]
  /** Every entry of the `hosts` input, as written, whatever the shard. */
  inventory: string[]
  /** This job's slice of the inventory (`shard: k/n`), when split across matrix jobs. */
  shard?: { index: number; count: number }
  /** Absolute path of the results file to write (`results-file`), if any. */
  resultsFile?: string
  /** `hosts` split into rolling batches (one batch without `batch`). */
  batches: Host[][]
  /** `host`: each host runs the whole plan on its own; `step`: each step finishes on the batch first. */
  strategy: 'host' | 'step'
  /** Failed hosts tolerated before the rest are skipped; Infinity for no limit. */
  maxFailures: number
  /** Validate and print the plan, connect to nothing. */
  dryRun: boolean
  /** What the `ssh-config` input says that ssh-fleet does not honour, for a warning. */
  sshConfigWarnings: string[]
  auth: Auth
  hostKeys: HostKeyPolicy
  steps: Step[]
  /** Steps run on a host after its plan failed there (`on-failure`), e.g. a rollback. */
  onFailure: Step[]
  /** Steps run on every host that started the plan, after it and after on-failure (`always`). */
  always: Step[]
  /** Password for sudo (`sudo-password`): reaches sudo on its stdin, never a command line, env or file. */
  sudoPassword?: string
  /** Forward the runner's SSH agent to the hosts (`forward-agent`). */
  forwardAgent: boolean
  /** Also offer SHA-1 and CBC algorithms for old appliances (`legacy-algorithms`). */
  legacyAlgorithms: boolean
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
