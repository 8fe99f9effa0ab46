/** The inputs of each action by name, as its action.yml declares them; code reads an input only by these. */

/** The inputs of ssh-fleet (action.yml). */
export enum Inputs {
  Hosts = 'hosts',
  Username = 'username',
  Port = 'port',
  PrivateKey = 'private-key',
  Certificate = 'certificate',
  Passphrase = 'passphrase',
  Password = 'password',
  Agent = 'agent',
  KnownHosts = 'known-hosts',
  Fingerprint = 'fingerprint',
  HostKeyCheck = 'host-key-check',
  Run = 'run',
  RunFile = 'run-file',
  Steps = 'steps',
  OnFailure = 'on-failure',
  Always = 'always',
  Capture = 'capture',
  Pty = 'pty',
  SudoPassword = 'sudo-password',
  ForwardAgent = 'forward-agent',
  LegacyAlgorithms = 'legacy-algorithms',
  Env = 'env',
  Shell = 'shell',
  Concurrency = 'concurrency',
  ConnectTimeout = 'connect-timeout',
  ConnectRetries = 'connect-retries',
  KeepaliveInterval = 'keepalive-interval',
  KeepaliveCountMax = 'keepalive-count-max',
  Strategy = 'strategy',
  Batch = 'batch',
  MaxFailures = 'max-failures',
  Shard = 'shard',
  ResultsFile = 'results-file',
  DryRun = 'dry-run',
  ProxyJump = 'proxy-jump',
  ProxyCommand = 'proxy-command',
  SshConfig = 'ssh-config',
  ProxyPrivateKey = 'proxy-private-key',
  ProxyCertificate = 'proxy-certificate',
  Timeout = 'timeout',
  Retries = 'retries',
  RetryDelay = 'retry-delay'
}

/** The inputs of the merge action (merge/action.yml). */
export enum MergeInputs {
  Files = 'files',
  FailOnFailure = 'fail-on-failure'
}
