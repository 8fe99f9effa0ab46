/**
 * A host's result as JSON, both ways: the shape the `results` output shows (results files keep a few
 * fields more), read back field by field when the merge reads results files.
 */
import { SKIP_CODES, type HostResult, type SkipCode, type StepResult } from '../base/results'

/** One host in the `results` output; results files also keep what merging needs to report it again. */
export type HostJson = ReturnType<typeof hostJson>

/** A host's result as the `results` output shows it; `forFile` adds the failed step and warnings. */
export function hostJson(r: HostResult, forFile = false) {
  return {
    host: r.host,
    status: r.status,
    exitCode: r.exitCode,
    durationMs: r.durationMs,
    attempts: r.attempts,
    error: r.error ?? null,
    ...(r.skipCode ? { skipCode: r.skipCode } : {}),
    ...(forFile ? { failedStep: r.failedStep ?? null, warnings: r.warnings } : {}),
    steps: r.steps.map((s) => ({
      name: s.name,
      status: s.status,
      exitCode: s.exitCode,
      signal: s.signal,
      durationMs: s.durationMs,
      attempts: s.attempts,
      ...(s.error ? { error: s.error } : {}),
      ...(s.phase ? { phase: s.phase } : {}),
      ...(s.stdout !== undefined ? { stdout: s.stdout } : {}),
      stdoutTail: s.stdoutTail,
      stderrTail: s.stderrTail,
      ...(s.reboot ? { downtimeMs: s.reboot.downtimeMs, rebootMs: s.reboot.totalMs } : {}),
      ...(s.transfer
        ? {
            files: s.transfer.files,
            bytes: s.transfer.bytes,
            unchanged: s.transfer.unchanged,
            deleted: s.transfer.deleted,
            bytesPerSecond: s.transfer.bytesPerSecond,
            transport: s.transfer.transport
          }
        : {})
    }))
  }
}

const HOST_STATUSES: ReadonlyArray<HostResult['status']> = ['success', 'failed', 'skipped', 'unreachable', 'cancelled']
const STEP_STATUSES: ReadonlyArray<StepResult['status']> = ['success', 'failed', 'skipped']

/** The inverse of hostJson(r, true), for merging results files; throws on a field of the wrong kind. */
export function hostFromJson(value: unknown): HostResult {
  const o = value as Record<string, unknown>
  const str = (v: unknown, what: string): string => {
    if (typeof v !== 'string') throw new Error(`${what} is not a string`)
    return v
  }
  const num = (v: unknown, what: string): number => {
    if (typeof v !== 'number') throw new Error(`${what} is not a number`)
    return v
  }
  const orNull = <T>(v: unknown, read: (v: unknown, what: string) => T, what: string): T | null =>
    v === null || v === undefined ? null : read(v, what)
  if (typeof o !== 'object' || o === null) throw new Error('a host result is not an object')
  const host = str(o.host, 'host')
  const status = str(o.status, `${host}: status`) as HostResult['status']
  if (!HOST_STATUSES.includes(status)) throw new Error(`${host}: unknown status '${status}'`)
  if (!Array.isArray(o.steps)) throw new Error(`${host}: steps is not a list`)
  // Files of earlier versions have no code: the host reads as plainly skipped.
  const skipCode = orNull(o.skipCode, str, `${host}: skipCode`) as SkipCode | null
  if (skipCode !== null && !SKIP_CODES.includes(skipCode)) throw new Error(`${host}: unknown skipCode '${skipCode}'`)
  return {
    host,
    status,
    exitCode: orNull(o.exitCode, num, `${host}: exitCode`),
    durationMs: num(o.durationMs, `${host}: durationMs`),
    attempts: num(o.attempts, `${host}: attempts`),
    error: orNull(o.error, str, `${host}: error`) ?? undefined,
    failedStep: orNull(o.failedStep, str, `${host}: failedStep`) ?? undefined,
    warnings: Array.isArray(o.warnings) ? o.warnings.map((w) => str(w, `${host}: warning`)) : [],
    ...(skipCode ? { skipCode } : {}),
    steps: o.steps.map((raw: Record<string, unknown>): StepResult => {
      const name = str(raw.name, `${host}: step name`)
      const at = `${host}, step ${name}`
      const stepStatus = str(raw.status, `${at}: status`) as StepResult['status']
      if (!STEP_STATUSES.includes(stepStatus)) throw new Error(`${at}: unknown status '${stepStatus}'`)
      return {
        name,
        status: stepStatus,
        exitCode: orNull(raw.exitCode, num, `${at}: exitCode`),
        signal: orNull(raw.signal, str, `${at}: signal`),
        durationMs: num(raw.durationMs, `${at}: durationMs`),
        attempts: num(raw.attempts, `${at}: attempts`),
        error: orNull(raw.error, str, `${at}: error`) ?? undefined,
        ...(raw.phase === 'on-failure' || raw.phase === 'always' ? { phase: raw.phase } : {}),
        ...(raw.stdout !== undefined ? { stdout: str(raw.stdout, `${at}: stdout`) } : {}),
        lost: false,
        stdoutTail: str(raw.stdoutTail ?? '', `${at}: stdoutTail`),
        stderrTail: str(raw.stderrTail ?? '', `${at}: stderrTail`),
        ...(raw.rebootMs !== undefined
          ? { reboot: { downtimeMs: num(raw.downtimeMs, `${at}: downtimeMs`), totalMs: num(raw.rebootMs, `${at}: rebootMs`) } }
          : {}),
        ...(raw.files !== undefined
          ? {
              transfer: {
                files: num(raw.files, `${at}: files`),
                bytes: num(raw.bytes, `${at}: bytes`),
                // Absent from the results files of releases before them.
                unchanged: raw.unchanged === undefined ? 0 : num(raw.unchanged, `${at}: unchanged`),
                deleted: raw.deleted === undefined ? 0 : num(raw.deleted, `${at}: deleted`),
                bytesPerSecond: num(raw.bytesPerSecond, `${at}: bytesPerSecond`),
                transport: raw.transport === 'exec' ? 'exec' : 'sftp'
              }
            }
          : {})
      }
    })
  }
}
