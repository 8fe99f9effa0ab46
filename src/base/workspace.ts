import { randomBytes } from 'node:crypto'
import {
  type Stats,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  readlinkSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync
} from 'node:fs'
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'

/** A runner path that would leave the workspace, or is not what it must be; the message names it. */
export class WorkspaceError extends Error {}

/** O_NOFOLLOW where the platform has it (not Windows, where the checks after opening do the work). */
const NOFOLLOW = constants.O_NOFOLLOW ?? 0
/** Opening a FIFO for reading waits for a writer, with the whole event loop: never wait. */
const NONBLOCK = constants.O_NONBLOCK ?? 0

/**
 * Opens `abs` for reading only if it is a regular file: looked at before opening (a FIFO or a device is
 * never opened) and after (fstat: what was opened, should something else have been swapped in). `shown`
 * names it in errors. The caller closes the fd.
 */
function openRegular(abs: string, shown: string, flags = 0): { fd: number; st: Stats } {
  const regular = (st: Stats): void => {
    if (!st.isFile()) throw new WorkspaceError(`${shown} is not a regular file`)
  }
  let fd: number
  try {
    regular(statSync(abs))
    fd = openSync(abs, constants.O_RDONLY | NONBLOCK | flags)
  } catch (err) {
    if (err instanceof WorkspaceError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ELOOP') throw new WorkspaceError(`${shown} became a symbolic link: refused`)
    throw new WorkspaceError(`${shown} cannot be read (${code ?? (err as Error).message})`)
  }
  try {
    const st = fstatSync(fd)
    regular(st)
    return { fd, st }
  } catch (err) {
    closeSync(fd)
    throw err
  }
}

/** Reads an open file as UTF-8, at most `maxBytes` (more is an error naming the limit); closes it. */
function readAll(fd: number, size: number, maxBytes: number, shown: string): string {
  try {
    if (size > maxBytes) throw new WorkspaceError(`${shown} is ${size} bytes, more than the ${maxBytes} bytes ssh-fleet reads`)
    const buf = Buffer.alloc(Math.min(size, maxBytes) + 1)
    let n = 0
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null)
    if (n > maxBytes) throw new WorkspaceError(`${shown} grew past the ${maxBytes} bytes ssh-fleet reads`)
    return buf.subarray(0, n).toString('utf8')
  } finally {
    closeSync(fd)
  }
}

/**
 * Reads a regular file that may be anywhere (an ssh config's IdentityFile, ~/.ssh/known_hosts, as in
 * OpenSSH), bounded, never blocking on a FIFO.
 */
export function readRegularFile(path: string, maxBytes: number): string {
  const { fd, st } = openRegular(path, path)
  return readAll(fd, st.size, maxBytes, path)
}

/**
 * The one way the action reads or writes a file on the runner: every path resolves (links followed)
 * inside the workspace (GITHUB_WORKSPACE) or the runner's temp directory (RUNNER_TEMP), and is checked
 * again once open, so a link swapped in after the check (a pull request's files, a step before this one)
 * cannot lead a read to `/proc/self/environ` or a write over a file outside. A link leading out is an
 * error that names the link.
 */
export class Workspace {
  /** The roots, links resolved (macOS's /var is /private/var). */
  private readonly roots: string[]

  constructor(
    /** Where relative paths resolve: GITHUB_WORKSPACE on a runner. */
    readonly dir: string,
    more: Array<string | undefined> = []
  ) {
    this.roots = [dir, ...more]
      .filter((r): r is string => Boolean(r))
      .flatMap((r) => {
        try {
          return [realpathSync(r)]
        } catch {
          return []
        }
      })
  }

  /** The runner's: GITHUB_WORKSPACE (else the current directory) and RUNNER_TEMP. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): Workspace {
    return new Workspace(env.GITHUB_WORKSPACE || process.cwd(), [env.RUNNER_TEMP])
  }

  /** Whether a real (link-free) path is inside one of the roots. */
  inside(real: string): boolean {
    return this.roots.some((root) => real === root || real.startsWith(root.endsWith(sep) ? root : root + sep))
  }

  private where(): string {
    return this.roots.length > 1 ? 'the workspace or the runner temp directory' : 'the workspace'
  }

  /**
   * The absolute path of `path` (relative to the workspace), checked: it and every link on the way stay
   * inside. `path` need not exist (a file to write): its nearest existing directory is checked.
   */
  resolve(path: string): string {
    const abs = resolve(this.dir, path)
    let existing = abs
    for (;;) {
      try {
        lstatSync(existing)
        break
      } catch {
        const up = dirname(existing)
        if (up === existing) break
        existing = up
      }
    }
    let real: string
    try {
      real = realpathSync(existing)
    } catch {
      // A link to nothing: name it.
      throw new WorkspaceError(`'${path}': ${this.show(existing)} is a symbolic link to nothing (${readlinkSync(existing)})`)
    }
    if (!this.inside(real)) throw new WorkspaceError(this.outside(path, existing))
    return abs
  }

  /** Why `path` (whose existing part is `existing`) leads outside: the first link on the way, or the path itself. */
  private outside(path: string, existing: string): string {
    const parts = existing.split(sep)
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join(sep) || sep
      let link = false
      try {
        link = lstatSync(prefix).isSymbolicLink()
      } catch {
        break
      }
      if (!link) continue
      let target: string
      try {
        target = realpathSync(prefix)
      } catch {
        target = readlinkSync(prefix)
      }
      if (!this.inside(target)) {
        return `'${path}': ${this.show(prefix)} is a symbolic link to ${target}, outside ${this.where()}: refused`
      }
    }
    return `'${path}' is outside ${this.where()} (${this.show(existing)}): refused`
  }

  /** `path` as given, and where it resolved when that reads differently: for messages. */
  private named(path: string, abs: string): string {
    const shown = this.show(abs)
    return shown === path ? `'${path}'` : `'${path}' (${shown})`
  }

  /** A path as messages show it: relative to the workspace when inside it. */
  show(abs: string): string {
    const rel = relative(this.dir, abs)
    return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs
  }

  /**
   * Opens a regular file for reading, checked before and after the open: not a link at its last
   * component (O_NOFOLLOW), still resolving inside, and the file opened is the one the path names now.
   * The caller reads from `fd` and closes it.
   */
  open(path: string): { fd: number; size: number; mode: number; mtimeMs: number; path: string } {
    const abs = this.resolve(path)
    const { fd, st } = openRegular(abs, this.named(path, abs), NOFOLLOW)
    try {
      let real: string
      try {
        real = realpathSync(abs)
      } catch {
        real = ''
      }
      const now = real && this.inside(real) ? statSync(real) : undefined
      if (!now || now.ino !== st.ino || now.dev !== st.dev)
        throw new WorkspaceError(`'${path}': ${this.show(abs)} changed while it was opened (a link swapped in?): refused`)
      return { fd, size: st.size, mode: st.mode, mtimeMs: st.mtimeMs, path: abs }
    } catch (err) {
      closeSync(fd)
      throw err
    }
  }

  /**
   * The size and modification time of the regular file at `path` (relative to the workspace), its last
   * component not followed (a link, or anything but a regular file, gives undefined): for comparing with
   * a host's copy only, cheaper than open. Bytes are read only through open, which checks the whole path.
   */
  peek(path: string): { size: number; mtimeMs: number } | undefined {
    try {
      const st = lstatSync(resolve(this.dir, path))
      return st.isFile() ? { size: st.size, mtimeMs: st.mtimeMs } : undefined
    } catch {
      return undefined
    }
  }

  /** Reads a regular file as UTF-8, at most `maxBytes` (more is an error naming the size and the limit). */
  readText(path: string, maxBytes: number): string {
    const { fd, size, path: abs } = this.open(path)
    return readAll(fd, size, maxBytes, this.named(path, abs))
  }

  /**
   * Writes `text` to `path` whole: into a new temporary file beside it (created exclusively, never
   * through a link), then renamed over it, so a link at `path` is replaced, never followed, and a reader
   * sees the old file or the new one. Missing directories are created, each checked to stay inside.
   */
  writeText(path: string, text: string): string {
    // The file itself may be a link: it is replaced, so only its directory must lead nowhere else.
    const abs = resolve(this.dir, path)
    const dir = this.resolve(dirname(abs))
    mkdirSync(dir, { recursive: true })
    const check = (): void => {
      let real: string
      try {
        real = realpathSync(dir)
      } catch {
        real = ''
      }
      if (!real || !this.inside(real)) throw new WorkspaceError(this.outside(path, dir))
    }
    check()
    let st
    try {
      st = lstatSync(abs)
    } catch {
      st = undefined
    }
    if (st?.isDirectory()) throw new WorkspaceError(`'${path}' is a directory; name a file`)
    const tmp = join(dir, `.${basename(abs)}.ssh-fleet-${randomBytes(4).toString('hex')}.tmp`)
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW, 0o644)
    try {
      const buf = Buffer.from(text)
      for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off)
    } catch (err) {
      closeSync(fd)
      unlinkSync(tmp)
      throw err
    }
    closeSync(fd)
    try {
      check()
      renameSync(tmp, abs)
    } catch (err) {
      try {
        unlinkSync(tmp)
      } catch {
        // already gone
      }
      throw err
    }
    return abs
  }
}
