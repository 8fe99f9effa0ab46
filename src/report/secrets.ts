import * as core from '@actions/core'

/** The action's secret inputs (and each line of a key), as registered with the runner's masker. */
const secrets = new Set<string>()

/** Masks `value` in the job log (core.setSecret) and remembers it, so the log never cuts a line inside it. */
export function registerSecret(value: string): void {
  core.setSecret(value)
  secrets.add(value)
}

/** Every secret registered so far. */
export function knownSecrets(): ReadonlySet<string> {
  return secrets
}
