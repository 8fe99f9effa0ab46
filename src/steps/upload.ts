import { randomBytes } from 'node:crypto'
import { closeSync } from 'node:fs'
import { basename } from 'node:path'
import pLimit from 'p-limit'
import type { Workspace } from '../base/workspace'
import type { Connection } from '../ssh/connection'
import { excludes } from '../plan/local-files'
import { openRemoteFiles, parent, type RemoteFiles, type Source } from './remote-files'
import { seconds } from '../report/output'
import { size } from '../report/units'
import type { UploadFile, UploadStep } from '../plan/settings'
import { withinTimeout } from './timeout'
import { liveConnection, type StepRunner } from './context'
import { stepResult, type StepResult } from '../base/results'

/** The job was cancelled while files were moving. */
class CancelledError extends Error {}

/** Files being compared with the host's copy at once (no local file held open). */
const LOOKS_AT_ONCE = 64
/**
 * What a failed upload waits for its files in flight to stop (their temporary files removed) before its
 * session closes: a host that answers none of it is left after this.
 */
const SETTLE_MS = 5000
/** Files of an upload going into one directory from which it is listed once rather than each file looked up. */
const LISTED_FROM = 8

/** A directory's names of the upload when it is listed for the comparison: LISTED_FROM of them or more. */
function listedFrom(names: ReadonlySet<string> | undefined): ReadonlySet<string> | undefined {
  return names !== undefined && names.size >= LISTED_FROM ? names : undefined
}

/** 1980-01-02 UTC (ms): no file is made before it but by a tool setting a fixed time (Nix's 1, zip's floor of 1980-01-01 local). */
const FIXED_BEFORE_MS = Date.UTC(1980, 0, 2)
/** A time shared by all the files older than this is a fixed one (SOURCE_DATE_EPOCH), not a fresh checkout's. */
const FIXED_AGE_MS = 24 * 3600 * 1000

/**
 * Why `compare: mtime` cannot go by the runner's files' times, when they look fixed (any before 1980, or
 * one second older than a day shared by all of several): a change keeping the size would look unchanged.
 */
function fixedTime(mtimes: number[]): string | undefined {
  if (mtimes.some((ms) => ms < FIXED_BEFORE_MS)) return 'before 1980'
  const second = (ms: number): number => Math.floor(ms / 1000)
  if (mtimes.length > 1 && mtimes[0] < Date.now() - FIXED_AGE_MS && mtimes.every((ms) => second(ms) === second(mtimes[0])))
    return `the same for all (${new Date(second(mtimes[0]) * 1000).toISOString()})`
  return undefined
}

/** Joins remote path parts with /, `to` first. */
function remote(to: string, rel: string): string {
  // `~` and `~/…` are the login home, where SFTP and exec channels start: relative paths.
  const root = (to === '~' ? '' : to.replace(/^~\//, '')).replace(/\/+$/, '') || (to.startsWith('/') ? '/' : '.')
  return rel === '' ? root : root === '/' ? `/${rel}` : `${root}/${rel}`
}

/**
 * Refuses a `delete: true` whose `to` is, however it is spelled (`~/.`, `/home//u`, `/home/u/../u`, a
 * link), `/`, a top-level directory, the login home or a directory holding it, or the home's `.ssh`
 * (wherever it really is) or anything inside a `.ssh`: the mirror would wipe the system or
 * authorized_keys. Decided on the host's real paths, resolved by the host itself.
 */
async function refuseWipe(files: RemoteFiles, to: string, root: string): Promise<void> {
  const [real, home, keys] = await Promise.all([
    files.realpath(root),
    files.realpath('.'),
    // No ~/.ssh on the host: nothing there to lock out with.
    files.realpath('.ssh').catch(() => undefined)
  ])
  const within = (dir: string | undefined): boolean => dir !== undefined && (real === dir || real.startsWith(`${dir}/`))
  const why =
    real === '/'
      ? 'the root directory /'
      : real === home
        ? `the login home (${home})`
        : home.startsWith(`${real}/`)
          ? `${real}, which holds the login home (${home})`
          : /^\/[^/]+$/.test(real)
            ? `${real}, a top-level directory`
            : within(keys) || real.split('/').includes('.ssh')
              ? `${real}, the ssh keys' directory or inside it`
              : undefined
  if (why !== undefined) throw new Error(`delete: true refused: to: ${to} is ${why}; nothing was removed`)
}

/** Runs an upload step once on the host's live connection. Never rejects. */
export const runUpload: StepRunner<UploadStep> = async (step, ctx) => {
  const live = await liveConnection(step, ctx)
  if ('result' in live) return live
  return { result: await upload(step, live.connection, ctx.settings.workspace, ctx.status, ctx.signal) }
}

/**
 * Uploads a step's files over the host's connection (SFTP, or exec channels where the host has no
 * SFTP server). Each file is opened through the workspace when it is sent (checked before and after
 * opening, so a source swapped for a link after the plan was read is refused, naming it) and its bytes
 * come from that open file. Each is written to a temporary name beside its destination
 * (`.name.ssh-fleet-XXXXXXXX.part`) and renamed into place, so the destination is either the old file
 * or the whole new one. Never rejects.
 */
async function upload(
  step: UploadStep,
  connection: Connection,
  workspace: Workspace,
  status: (message: string) => void,
  signal?: AbortSignal
): Promise<StepResult> {
  const started = Date.now()
  let files: RemoteFiles | undefined
  // Aborted once the upload failed, timed out or was cancelled: nothing more is started on the host.
  const stop = new AbortController()
  const opening = openRemoteFiles(connection, status, stop.signal)
  try {
    // The timeout covers starting SFTP too: a server may take the login and never answer.
    files = await withinTimeout(opening, step.timeoutMs, signal)
  } catch (err) {
    return stepResult(step.name, started, {
      status: 'failed',
      lost: connection.lostReason !== undefined,
      error: `could not start SFTP: ${(err as Error).message}`
    })
  }
  if (files === undefined) {
    stop.abort()
    void opening.then(
      (late) => late.close(),
      () => undefined
    )
    if (signal?.aborted)
      return stepResult(step.name, started, { status: 'failed', cancelled: true, error: 'cancelled before the upload started' })
    return stepResult(step.name, started, {
      status: 'failed',
      error: `timed out after ${step.timeoutMs / 1000}s: the server did not open the SFTP session (it took the login but does not answer channel requests)`
    })
  }
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    if (step.timeoutMs > 0)
      timer = setTimeout(
        () => reject(new Error(`timed out after ${step.timeoutMs / 1000}s`)),
        Math.max(0, started + step.timeoutMs - Date.now())
      )
  })
  /** What this upload did: files and bytes sent, files already so on the host, files removed by `delete`. */
  const moved = { files: 0, bytes: 0, unchanged: 0, deleted: 0 }
  let comparedBy = step.compare
  const work = async (): Promise<void> => {
    const single = step.files.length === 1 && step.files[0].relative === ''
    // One file to a `to` that is a directory on the host goes inside it by its name, as scp and cp put it.
    const placed =
      single && (await files.isDirectory(remote(step.to, '')))
        ? [{ ...step.files[0], relative: basename(step.files[0].local) }]
        : step.files
    if (!single) await files.mkdirs(remote(step.to, ''))
    // Before anything is written: a refused mirror leaves the host as it was.
    if (step.delete && !single) await refuseWipe(files, step.to, remote(step.to, ''))
    // Over SFTP as many at once as files are sent; over exec one by one, as before (each a channel, and a
    // host that closes its connection after each session takes them best one at a time).
    const making = pLimit(files.transport === 'sftp' ? files.filesAtOnce : 1)
    await Promise.all(step.dirs.map((dir) => making(() => files.mkdirs(remote(step.to, dir)))))
    // Directories many files go into are listed once for the comparison (a request per ~100 files, not one each).
    const crowd = new Map<string, Set<string>>()
    for (const file of placed) {
      const target = remote(step.to, file.relative)
      const dir = parent(target)
      crowd.set(dir, (crowd.get(dir) ?? new Set()).add(target.slice(target.lastIndexOf('/') + 1)))
    }
    // Times fixed by the build (SOURCE_DATE_EPOCH, Nix) say nothing of content: the bytes are compared instead.
    const fixed = step.compare === 'mtime' ? fixedTime(placed.flatMap((f) => workspace.peek(f.local)?.mtimeMs ?? [])) : undefined
    const by = fixed === undefined ? step.compare : 'checksum'
    if (fixed !== undefined)
      status(`compare: mtime, but the files' modification times are ${fixed}, set by the build: comparing by checksum instead`)
    comparedBy = by
    const looking = pLimit(LOOKS_AT_ONCE)
    const sending = pLimit(files.filesAtOnce)
    /** Opens a file of the upload through the workspace, its errors naming it. */
    const open = (file: UploadFile, name: string): ReturnType<Workspace['open']> => {
      try {
        return workspace.open(file.local)
      } catch (err) {
        throw new Error(`${name}: ${(err as Error).message}`)
      }
    }
    /** The first file's failure: the one reported, the others stopped by it. */
    let failure: { error: unknown } | undefined
    // Every file's work ended (sent, stopped, failed) before the step ends: none goes on behind its result.
    await Promise.allSettled(
      placed
        .map(async (file) => {
          const target = remote(step.to, file.relative)
          const dir = parent(target)
          const name = file.relative || basename(file.local)
          const mode = step.mode ?? file.mode
          const same = await looking(async () => {
            stop.signal.throwIfAborted()
            await files.mkdirs(dir)
            if (by === 'none') return false
            const compare = (seen: { size: number; mtimeMs: number }, source?: Source): Promise<boolean> =>
              files.unchanged(target, { ...seen, mode, by, source, listed: listedFrom(crowd.get(dir)) }).catch((err: Error) => {
                throw new Error(`${name} → ${target}: ${err.message}`)
              })
            if (by === 'checksum') {
              // Hashed as it would be sent: opened through the workspace, held open only for that.
              const source = open(file, name)
              try {
                return await compare(source, source)
              } finally {
                closeSync(source.fd)
              }
            }
            // Its size and time as they are now; a link or a vanished file goes to the sending, where open names it.
            const seen = workspace.peek(file.local)
            return seen !== undefined && (await compare(seen))
          })
          if (same) {
            moved.unchanged++
            return
          }
          await sending(async () => {
            // A name of this attempt's own: hosts sharing a filesystem (NFS) must not write into each other's.
            const part = `${dir === '.' ? '' : `${dir}/`}.${target.slice(dir.length + 1) || target}.ssh-fleet-${randomBytes(4).toString('hex')}.part`
            const source = open(file, name)
            try {
              await files.put(source, part, target, mode)
              moved.files++
              moved.bytes += source.size
            } catch (err) {
              throw new Error(`${name} → ${target}: ${(err as Error).message}`)
            } finally {
              closeSync(source.fd)
            }
          })
        })
        .map((done) =>
          done.catch((err: unknown) => {
            // No new file is started; those in flight stop and remove their temporary files.
            failure ??= { error: err }
            stop.abort()
          })
        )
    )
    if (failure) throw failure.error
    if (step.delete && !single) {
      const root = remote(step.to, '')
      const keepFiles = new Set(step.files.map((f) => f.relative))
      const keepDirs = new Set([
        ...step.dirs,
        ...step.files.flatMap((f) =>
          f.relative
            .split('/')
            .slice(0, -1)
            .map((_, i, a) => a.slice(0, i + 1).join('/'))
        )
      ])
      const tree = await files.tree(root)
      // Excluded paths on the host are left alone, and so are the directories that hold them.
      const excluded = excludes(step.exclude)
      const leftAlone = tree.files.filter(excluded)
      for (const f of leftAlone)
        f.split('/')
          .slice(0, -1)
          .forEach((_, i, a) => keepDirs.add(a.slice(0, i + 1).join('/')))
      const stale = tree.files.filter((f) => !keepFiles.has(f) && !excluded(f))
      const staleDirs = tree.dirs.filter((d) => !keepDirs.has(d) && !excluded(d))
      await files.remove(root, stale, staleDirs)
      moved.deleted = stale.length
      if (stale.length + staleDirs.length > 0)
        status(`removed ${stale.length} files and ${staleDirs.length} directories not in ${step.from}`)
    }
  }
  let onCancel = (): void => {}
  let unwatch = (): void => {}
  let working: Promise<void> = Promise.resolve()
  try {
    const lost = new Promise<never>((_, reject) => (unwatch = connection.onLost((reason) => reject(new Error(reason)))))
    const cancelled = new Promise<never>((_, reject) => {
      onCancel = () => reject(new CancelledError())
      if (signal?.aborted) onCancel()
      signal?.addEventListener('abort', onCancel, { once: true })
    })
    working = work()
    await Promise.race([working, timeout, lost, cancelled])
    const ms = Date.now() - started
    const rate = moved.bytes / Math.max(ms / 1000, 0.001)
    const same = comparedBy === 'checksum' ? 'same size and SHA-256' : 'same size and modification time'
    const unchanged = moved.unchanged > 0 ? `; ${moved.unchanged} unchanged (${same}), not sent` : ''
    status(`uploaded ${moved.files} files, ${size(moved.bytes)} in ${seconds(ms)} (${size(rate)}/s) over ${files.transport}${unchanged}`)
    return stepResult(step.name, started, {
      status: 'success',
      exitCode: 0,
      transfer: { ...moved, bytesPerSecond: Math.round(rate), transport: files.transport }
    })
  } catch (err) {
    if (err instanceof CancelledError)
      return stepResult(step.name, started, {
        status: 'failed',
        cancelled: true,
        error: 'cancelled during the upload (the job was cancelled); files not yet renamed into place are untouched'
      })
    const lost = connection.lostReason
    return stepResult(step.name, started, {
      status: 'failed',
      lost: lost !== undefined,
      error: lost ? `connection lost during the upload: ${lost}` : `upload failed: ${(err as Error).message}`
    })
  } finally {
    clearTimeout(timer)
    unwatch()
    signal?.removeEventListener('abort', onCancel)
    // Failed, timed out or cancelled: nothing more starts, and what is in flight ends (its temporary files
    // removed on the live session) before the session closes and the step's result is given.
    stop.abort()
    let limit: NodeJS.Timeout | undefined
    await Promise.race([working.catch(() => undefined), new Promise((done) => (limit = setTimeout(done, SETTLE_MS)))])
    clearTimeout(limit)
    await files.close()
  }
}
