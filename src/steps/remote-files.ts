import { createHash } from 'node:crypto'
import { createReadStream, open, read } from 'node:fs'
import type { ClientChannel, SFTPWrapper, Stats } from 'ssh2'
import { BoundedBytes } from '../base/bounded'
import { ChannelOpenError, commandExit, type Connection } from '../ssh/connection'
import { answerMarker, FramedAnswer, shownNoise } from './framed-answer'
import { shellQuote } from './remote-shell'
import { SessionSlots } from './session-slots'
import { ByteBudget } from './byte-budget'

/**
 * Bytes per SFTP write request: what the server says it takes (OpenSSH's limits@openssh.com: 255 KiB,
 * which ssh2 reads at the start), at most this much. Large requests halve the host's work per byte.
 */
const WRITE_MAX = 256 * 1024
/** Bytes per SFTP write request where the server says nothing: every server takes 32 KiB (fastPut's size). */
const WRITE_SAFE = 32 * 1024
/**
 * File data an SFTP upload holds per host (read, sent, not yet acknowledged): twice OpenSSH's channel
 * window (2 MiB), so the window never runs dry, and the memory one host's upload can take.
 */
const BYTES_IN_FLIGHT = 4 * 1024 * 1024
/** Write requests in flight per file: a large file cannot take the whole budget from the small ones beside it. */
const REQUESTS_PER_FILE = 8
/** Bytes read at a time to hash a file, on the runner and on the host (`compare: checksum`). */
const HASH_BLOCK = 256 * 1024
/** What an exec command may print on stderr before the rest is dropped: its last line names the failure. */
const EXEC_STDERR_CAP = 4 * 1024
/** What an exec command may print on stdout, but for the tree listing. */
const EXEC_STDOUT_CAP = 4 * 1024
/** The exec tree listing (NUL-separated paths): about 64k paths of 128 bytes. Past it `delete` is refused, never half done. */
const TREE_LISTING_CAP = 8 * 1024 * 1024
/** Directories an upload creates, set after each is made whatever the host's umask (existing ones keep theirs). */
const DIR_MODE = 0o755
/** SFTP's SSH_FX_EOF: a directory listing's end. */
const SFTP_EOF = 1
/**
 * Entries of one directory listed to compare an upload's files with (about 100 bytes each): past it,
 * a directory that large or a host answering without end, each file is looked up alone.
 */
const LISTING_CAP = 100_000
/**
 * Bytes of names (each entry's name and its `ls -l` line) read in one such listing: LISTING_CAP entries
 * of a 100-byte name and its 100-byte line. Past it, as past LISTING_CAP, each file is looked up alone.
 */
const LISTING_BYTES = LISTING_CAP * 200
/** SFTP's SSH_FX_NO_SUCH_FILE (draft-ietf-secsh-filexfer-02): the one readdir failure that means "nothing there". */
const SFTP_NO_SUCH_FILE = 2
/** A closing SFTP channel gets this long to confirm before the next step opens its own (dropbear confirms at once). */
const CLOSE_WAIT_MS = 1000

/**
 * The host's filesystem as an upload sees it: over SFTP, or, where the host has no SFTP server,
 * over exec channels running POSIX commands (sh, cat, wc, chmod, mv, find). Both put each file under
 * a temporary name first and rename it into place, so a destination is the old file or the whole new one.
 */
/** A runner file opened for an upload (Workspace.open): its bytes are read from `fd`, never from the path again. */
export interface Source {
  fd: number
  size: number
  /** Its modification time (ms since the epoch): the host's copy gets it, to the second, and is compared by it. */
  mtimeMs: number
}

/** What an upload wants a file on the host to be: compared before sending, so a file already so is left alone. */
export interface Wanted {
  size: number
  mtimeMs: number
  mode: number
  /** `mtime`: the same size and modification time; `checksum`: the same size and SHA-256 of `source`'s bytes. */
  by: 'mtime' | 'checksum'
  /** The runner's file, open, for `checksum`. */
  source?: Source
  /**
   * The names of the upload's files in its directory, when many: looked up in one listing of it (only
   * these kept), not asked for alone.
   */
  listed?: ReadonlySet<string>
}

/** SHA-256 (hex) of the first `size` bytes of an open file, read at offsets in blocks (the fd may be shared). */
async function localSha256(source: Source): Promise<string> {
  const hash = createHash('sha256')
  const buf = Buffer.allocUnsafe(HASH_BLOCK)
  for (let at = 0; at < source.size;) {
    const len = Math.min(HASH_BLOCK, source.size - at)
    const got = await new Promise<number>((res, rej) => read(source.fd, buf, 0, len, at, (err, n) => (err ? rej(err) : res(n))))
    if (got === 0) break
    hash.update(buf.subarray(0, got))
    at += got
  }
  return hash.digest('hex')
}

export interface RemoteFiles {
  readonly transport: 'sftp' | 'exec'
  /** Files sent at once: many on SFTP's one session; over exec a channel each, within sshd's default MaxSessions (10). */
  readonly filesAtOnce: number
  /** Creates `dir` and its parents (mkdir -p), each new one set to 0755 (a umask of 027 or 077 cuts what mkdir gives). */
  mkdirs(dir: string): Promise<void>
  /**
   * Writes `source`'s `size` bytes to `part` with `mode` and the source's modification time, then
   * renames it over `target`; removes `part` on failure (and once the upload is stopped: its signal is
   * checked before each request). Reads the fd at offsets (it may be shared), and leaves it open: the caller closes it.
   */
  put(source: Source, part: string, target: string, mode: number): Promise<void>
  /**
   * Whether `target` is already a regular file (not a link) of this size and modification time (to
   * the second, as rsync's quick check), or with `by: checksum` of this size and SHA-256 (its bytes
   * read back); its mode and time are set when only they differ. Over exec: never (every file is sent).
   */
  unchanged(target: string, wanted: Wanted): Promise<boolean>
  /** Whether `path` is a directory on the host (through links); false when nothing is there. */
  isDirectory(path: string): Promise<boolean>
  /** The host's real path of `dir` (links, `.`, `..` and `//` resolved); `.` is the login home. */
  realpath(dir: string): Promise<string>
  /** Every path below `dir`, files and directories apart, relative to it; nothing when it does not exist. */
  tree(dir: string): Promise<{ files: string[]; dirs: string[] }>
  /** Removes these files, then these directories (deepest first), below `root`. */
  remove(root: string, files: string[], dirs: string[]): Promise<void>
  /** Ends the transport and waits until the host has let go of it. */
  close(): Promise<void>
}

export function parent(path: string): string {
  const i = path.lastIndexOf('/')
  return i > 0 ? path.slice(0, i) : i === 0 ? '/' : '.'
}

function call<T>(fn: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise((res, rej) => fn((err, value) => (err ? rej(err) : res(value as T))))
}

/** mkdir -p with each directory asked for once, however many files go into it. */
function onceEach(make: (dir: string) => Promise<void>): (dir: string) => Promise<void> {
  const made = new Map<string, Promise<void>>()
  const mkdirs = (dir: string): Promise<void> => {
    if (dir === '.' || dir === '/' || dir === '') return Promise.resolve()
    let pending = made.get(dir)
    if (!pending) made.set(dir, (pending = make(dir)))
    return pending
  }
  return mkdirs
}

/** Ends a channel and resolves once the host confirms it closed (or the wait is over). */
function closed(channel: { on(event: 'close', f: () => void): unknown; end(): unknown }, connection: Connection): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(), CLOSE_WAIT_MS)
    const done = (): void => {
      clearTimeout(timer)
      unwatch()
      resolve()
    }
    channel.on('close', done)
    const unwatch = connection.onLost(done)
    channel.end()
  })
}

class SftpFiles implements RemoteFiles {
  readonly transport = 'sftp'
  // Enough to hide each small file's round trips (open, close, rename) behind the others' bytes.
  readonly filesAtOnce = 16
  readonly mkdirs: (dir: string) => Promise<void>

  /** File data in flight on this host, shared by its files. */
  private readonly budget = new ByteBudget(BYTES_IN_FLIGHT)
  private readonly listings = new Map<string, Promise<Map<string, Stats> | undefined>>()
  /** Buffers of one write request's size, free for the next block read. */
  private readonly spare: Buffer[] = []

  constructor(
    private readonly sftp: SFTPWrapper,
    private readonly connection: Connection,
    /** Aborted when the upload failed or ended: no file is started, written on or renamed into place after it. */
    private readonly stop: AbortSignal
  ) {
    this.mkdirs = onceEach(async (dir) => {
      await this.mkdirs(parent(dir))
      try {
        await this.ask<void>((cb) => sftp.mkdir(dir, { mode: DIR_MODE }, cb))
      } catch (err) {
        const stat = await this.ask<{ isDirectory(): boolean }>((cb) => sftp.stat(dir, cb)).catch(() => undefined)
        if (!stat?.isDirectory()) throw new Error(`cannot create directory ${dir}: ${(err as Error).message}`)
        return // it was there: left as it is
      }
      // The server's umask (internal-sftp -u, pam_umask) cut the mode mkdir asked for; setstat is not cut.
      await this.ask<void>((cb) => sftp.chmod(dir, DIR_MODE, cb)).catch((err: Error) => {
        throw new Error(`cannot set mode ${DIR_MODE.toString(8)} on new directory ${dir}: ${err.message}`)
      })
    })
  }

  /** One SFTP request, sent with the others of the same tick in one write (Link#coalesced); its answer. */
  private ask<T>(send: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
    return call<T>((cb) => this.connection.coalesced(() => send(cb)))
  }

  async put(source: Source, part: string, target: string, mode: number): Promise<void> {
    const { sftp, stop } = this
    stop.throwIfAborted()
    try {
      await this.write(source, part, mode)
      stop.throwIfAborted()
      // Over an existing file: atomically with OpenSSH's posix-rename, else remove then rename.
      await this.ask<void>((cb) => sftp.ext_openssh_rename(part, target, cb)).catch(async () => {
        await this.ask<void>((cb) => sftp.unlink(target, cb)).catch(() => undefined)
        await this.ask<void>((cb) => sftp.rename(part, target, cb))
      })
    } catch (err) {
      // On a live connection the partial file goes (waited for: the session closes after); on a lost one it stays (documented).
      await this.ask<void>((cb) => sftp.unlink(part, cb)).catch(() => undefined)
      throw err
    }
  }

  /**
   * A directory's entries (name → attributes, as lstat gives them: a link is a link), listed once per
   * upload; undefined when it cannot be listed (then each file is looked at alone).
   */
  private listing(dir: string, wanted: ReadonlySet<string>): Promise<Map<string, Stats> | undefined> {
    let pending = this.listings.get(dir)
    if (!pending) this.listings.set(dir, (pending = this.list(dir, wanted).catch(() => undefined)))
    return pending
  }

  /**
   * Reads a directory's entries batch by batch, keeping those `wanted`; undefined past LISTING_CAP
   * entries or LISTING_BYTES of names (a host answering without end, or with huge names).
   */
  private async list(dir: string, wanted: ReadonlySet<string>): Promise<Map<string, Stats> | undefined> {
    const handle = await this.ask<Buffer>((cb) => this.sftp.opendir(dir, cb))
    const entries = new Map<string, Stats>()
    let count = 0
    let bytes = 0
    try {
      for (;;) {
        const batch = await this.ask<Array<{ filename: string; longname: string; attrs: Stats }>>((cb) =>
          this.sftp.readdir(handle, cb)
        ).catch((err: { code?: unknown }) => {
          if (err.code === SFTP_EOF) return undefined
          throw err
        })
        if (batch === undefined) return entries
        for (const e of batch) {
          bytes += e.filename.length + e.longname.length
          if (wanted.has(e.filename)) entries.set(e.filename, e.attrs)
        }
        count += batch.length
        if (count > LISTING_CAP || bytes > LISTING_BYTES) return undefined
      }
    } finally {
      this.sftp.close(handle, () => {})
    }
  }

  async unchanged(target: string, wanted: Wanted): Promise<boolean> {
    const listed = wanted.listed ? await this.listing(parent(target), wanted.listed) : undefined
    const stat = listed
      ? listed.get(target.slice(target.lastIndexOf('/') + 1))
      : await this.ask<Stats>((cb) => this.sftp.lstat(target, cb)).catch(() => undefined)
    if (!stat?.isFile() || stat.size !== wanted.size) return false
    const mtime = Math.floor(wanted.mtimeMs / 1000)
    if (wanted.by === 'mtime' && stat.mtime !== mtime) return false
    if (wanted.by === 'checksum') {
      if (!wanted.source) throw new Error('no runner file to compare with')
      const { source } = wanted
      // Both blocks come out of the host's budget: 64 lookups at once hold no more than its writes may.
      const release = await this.budget.take(2 * HASH_BLOCK)
      try {
        // A host copy that cannot be read (mode 000, gone meanwhile) is sent: the rename replaces it.
        const [here, there] = await Promise.all([localSha256(source), this.sha256(target, source.size).catch(() => undefined)])
        if (here !== there) return false
      } finally {
        release()
      }
    }
    // A mode or time the login user may not set (another owner's file) is sent too: the rename replaces it.
    if ((stat.mode & 0o7777) !== wanted.mode || stat.mtime !== mtime)
      return this.ask<void>((cb) => this.sftp.setstat(target, { mode: wanted.mode, atime: stat.atime, mtime }, cb)).then(
        () => true,
        () => false
      )
    return true
  }

  /**
   * SHA-256 (hex) of a file's first `size` bytes on the host, read over SFTP in blocks: a file growing
   * meanwhile is not read past them (it then differs: its size no longer matches).
   */
  private async sha256(path: string, size: number): Promise<string> {
    const { sftp } = this
    const hash = createHash('sha256')
    const handle = await this.ask<Buffer>((cb) => sftp.open(path, 'r', cb))
    try {
      const buf = Buffer.allocUnsafe(Math.min(HASH_BLOCK, size))
      for (let at = 0; at < size;) {
        const len = Math.min(HASH_BLOCK, size - at)
        const got = await this.ask<number>((cb) => sftp.read(handle, buf, 0, len, at, cb))
        if (!got) break // shorter than it was listed: the hash differs
        hash.update(buf.subarray(0, got))
        at += got
      }
    } finally {
      sftp.close(handle, () => {})
    }
    return hash.digest('hex')
  }

  /**
   * Sends the source's bytes to a new file `part`, then sets its mode (not cut by the umask, as open's
   * is) and modification time: up to REQUESTS_PER_FILE writes in flight, each read from the fd at its
   * offset into a buffer of its own, within the host's ByteBudget.
   */
  private async write(source: Source, part: string, mode: number): Promise<void> {
    const { sftp, budget } = this
    const handle = await this.ask<Buffer>((cb) => sftp.open(part, 'w', { mode }, cb))
    const chunk = Math.min(WRITE_MAX, (sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? WRITE_SAFE)
    let next = 0
    const sender = async (): Promise<void> => {
      while (next < source.size) {
        this.stop.throwIfAborted()
        const at = next
        const len = Math.min(chunk, source.size - at)
        next += len
        const release = await budget.take(len)
        // Full blocks reuse the host's spare buffers (at most its budget's worth exist): no garbage per request.
        const full = len === chunk
        let buf: Buffer | undefined = (full && this.spare.pop()) || Buffer.allocUnsafe(len)
        try {
          const got = await new Promise<number>((res, rej) =>
            read(source.fd, buf as Buffer, 0, len, at, (err, n) => (err ? rej(err) : res(n)))
          )
          if (got !== len) throw new Error(`the file shrank while it was sent (${at + got} of ${source.size} bytes)`)
          // ssh2 copies the bytes into its packet before write returns (the buffer is free again), and calls
          // back once the host wrote them; the request's SSH packets go out as one write.
          const written = this.ask<void>((cb) => sftp.write(handle, buf as Buffer, 0, len, at, cb))
          if (full) this.spare.push(buf)
          buf = undefined
          await written
        } finally {
          if (full && buf) this.spare.push(buf)
          release()
        }
      }
    }
    const senders = Math.min(REQUESTS_PER_FILE, Math.ceil(source.size / chunk))
    const sent = await Promise.allSettled(Array.from({ length: senders }, sender))
    const failed = sent.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    // Asked together with the close (one round trip): the server answers them in order.
    const seconds = Math.floor(source.mtimeMs / 1000)
    const stamped = failed
      ? Promise.resolve()
      : this.ask<void>((cb) => sftp.fsetstat(handle, { mode, atime: Math.floor(Date.now() / 1000), mtime: seconds }, cb))
    const closing = this.ask<void>((cb) => sftp.close(handle, cb))
    if (failed) {
      closing.catch(() => undefined)
      throw failed.reason
    }
    await Promise.all([stamped, closing])
  }

  isDirectory(path: string): Promise<boolean> {
    return this.ask<{ isDirectory(): boolean }>((cb) => this.sftp.stat(path, cb)).then(
      (stat) => stat.isDirectory(),
      () => false
    )
  }

  realpath(dir: string): Promise<string> {
    return this.ask<string>((cb) => this.sftp.realpath(dir, cb))
  }

  async tree(dir: string, rel = ''): Promise<{ files: string[]; dirs: string[] }> {
    const tree = { files: [] as string[], dirs: [] as string[] }
    let entries: Array<{ filename: string; attrs: { isDirectory(): boolean } }>
    const path = rel ? `${dir}/${rel}` : dir
    try {
      entries = await this.ask((cb) => this.sftp.readdir(path, cb))
    } catch (err) {
      // Only a missing directory is empty: one that cannot be read would make its stale files look gone.
      if ((err as { code?: unknown }).code === SFTP_NO_SUCH_FILE) return tree
      throw new Error(`cannot list ${path}: ${(err as Error).message}`)
    }
    for (const e of entries) {
      const path = rel ? `${rel}/${e.filename}` : e.filename
      if (e.attrs.isDirectory()) {
        const below = await this.tree(dir, path)
        tree.files.push(...below.files)
        tree.dirs.push(...below.dirs, path)
      } else {
        tree.files.push(path)
      }
    }
    return tree
  }

  async remove(root: string, files: string[], dirs: string[]): Promise<void> {
    this.stop.throwIfAborted()
    // Files all asked at once (the server answers each); directories one by one, deepest first.
    await Promise.all(files.map((f) => this.ask<void>((cb) => this.sftp.unlink(`${root}/${f}`, cb))))
    for (const d of dirs) await this.ask<void>((cb) => this.sftp.rmdir(`${root}/${d}`, cb))
  }

  close(): Promise<void> {
    // dropbear refuses a new exec while this channel is still closing: wait for its close.
    return closed(this.sftp, this.connection)
  }
}

/** The host's answer to one command: exit code, its stdout framed (the login shell's noise apart), stderr within its cap. */
interface Answer {
  code: number | null
  stdout: FramedAnswer
  stderr: string
  /** Bytes of stderr past EXEC_STDERR_CAP, dropped. */
  stderrDropped: number
}

/** Each level of `dir` from the top: `a/b/c` → `a`, `a/b`, `a/b/c`; `/srv/x` → `/srv`, `/srv/x`. */
function levels(dir: string): string[] {
  const parts = dir.split('/')
  return parts.map((_, i) => parts.slice(0, i + 1).join('/')).filter((d) => d !== '' && d !== '.')
}

class ExecFiles implements RemoteFiles {
  readonly transport = 'exec'
  readonly filesAtOnce = 4
  readonly mkdirs: (dir: string) => Promise<void>
  /** A channel per command: several at once, one at a time once the server refuses one (MaxSessions). */
  private readonly slots = new SessionSlots()

  constructor(
    private readonly connection: Connection,
    /** Aborted when the upload failed or ended: no command is started after it. */
    private readonly stop: AbortSignal
  ) {
    this.mkdirs = onceEach(async (dir) => {
      // Level by level, each one made here (and only those) set to DIR_MODE: `mkdir -p -m` sets the last
      // one only, and the umask cuts the rest. A level another command makes meanwhile is that one's to set.
      const script =
        `for d in ${levels(dir).map(shellQuote).join(' ')}; do [ -d "$d" ] && continue; ` +
        `if mkdir -- "$d"; then chmod ${DIR_MODE.toString(8)} -- "$d" || exit 1; elif [ ! -d "$d" ]; then exit 1; fi; done`
      await this.must(script, `cannot create directory ${dir}`)
    })
  }

  /**
   * Runs a POSIX sh script with `input` on its stdin (nothing when undefined). The script first prints
   * a fresh marker line: its stdout after the marker is kept up to `stdoutCap` bytes, what came before
   * (the login shell's noise) apart; its stderr up to EXEC_STDERR_CAP. A host answering with gigabytes
   * is counted, not held.
   */
  private sh(script: string, input?: NodeJS.ReadableStream | string, stdoutCap = EXEC_STDOUT_CAP): Promise<Answer> {
    this.stop.throwIfAborted()
    const { marker, print } = answerMarker()
    // Checked again when a channel frees up: a command queued for one is not started once the upload stopped.
    const open = (once: boolean): Promise<ClientChannel> =>
      this.stop.aborted ? Promise.reject(this.stop.reason) : this.connection.exec(`sh -c ${shellQuote(`${print}; ${script}`)}`, once)
    return this.slots.with(
      open,
      (channel) =>
        new Promise<Answer>((resolve, reject) => {
          const out = new FramedAnswer(marker, stdoutCap)
          const err = new BoundedBytes(EXEC_STDERR_CAP)
          channel.on('data', (d: Buffer) => out.push(d))
          channel.stderr.on('data', (d: Buffer) => err.push(d))
          channel.on('error', () => {})
          // Cut at the cap, the last line kept is partial: end at the last whole one.
          const stderr = (text: string): string => (err.cut ? text.slice(0, Math.max(0, text.lastIndexOf('\n'))) : text).trim()
          channel.on('close', () => {
            out.end()
            resolve({ code: commandExit(channel)?.code ?? null, stdout: out, stderr: stderr(err.text()), stderrDropped: err.dropped })
          })
          if (input === undefined || typeof input === 'string') channel.end(input)
          else
            input
              .on('error', (e) => {
                channel.close()
                reject(e)
              })
              .pipe(channel)
        })
    )
  }

  /** Runs `script` (as sh does); its framed stdout when it ran and exited 0, else an error saying `what` failed and why. */
  private async must(script: string, what: string, input?: NodeJS.ReadableStream | string, stdoutCap?: number): Promise<FramedAnswer> {
    const answer = await this.sh(script, input, stdoutCap)
    if (answer.code === 0 && answer.stdout.framed) return answer.stdout
    const lost = this.connection.lostReason
    if (lost) throw new Error(lost)
    const dropped = answer.stderrDropped > 0 ? ` (${answer.stderrDropped} more bytes of stderr dropped)` : ''
    const why =
      answer.code !== 0
        ? `${answer.stderr.split('\n').pop() || `exit code ${answer.code}`}${dropped}`
        : 'the host answered without running the command (no answer marker: a ForceCommand or a login shell that ignores commands?)'
    // The command never ran: what the login shell printed instead says why (nologin's message is on stdout).
    const { noise } = answer.stdout
    const shell = answer.stdout.framed || noise.bytes().length === 0 ? '' : `; the login shell printed ${shownNoise(noise)}`
    throw new Error(`${what}: ${why}${shell}`)
  }

  /** What the login shell prints before every command (nothing on a quiet host); rejects when commands do not run. */
  async loginNoise(what: string): Promise<BoundedBytes> {
    return (await this.must('true', what)).noise
  }

  async put(source: Source, part: string, target: string, mode: number): Promise<void> {
    const p = shellQuote(part)
    // The size check keeps a cut stream (EOF before the end) from being renamed into place.
    // The modification time as POSIX touch takes it (UTC); a touch that cannot set it costs only a later skip.
    const stamp = new Date(source.mtimeMs).toISOString().replace(/^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+).*/, '$1$2$3$4$5.$6')
    const script =
      `umask 077; cat >${p} && n=$(wc -c <${p}) && [ $n -eq ${source.size} ] && chmod ${mode.toString(8)} ${p} && ` +
      `{ TZ=UTC0 touch -m -t ${stamp} ${p} 2>/dev/null || :; } && mv -f -- ${p} ${shellQuote(target)} ` +
      `|| { rm -f -- ${p}; echo "could not write ${target.replace(/[^\w./-]/g, '?')}" >&2; exit 1; }`
    // The opened file's first `size` bytes, from its fd. Its close is a no-op: the fd is the caller's
    // (a stream's destroy closes its fd whatever autoClose says).
    const fs = { open, read, close: (_fd: number, cb: (err: null) => void) => cb(null) }
    const stream = source.size === 0 ? '' : createReadStream('', { fd: source.fd, fs, start: 0, end: source.size - 1 })
    try {
      await this.must(script, 'upload', stream)
    } finally {
      // Stopped before the caller closes the fd: a read after that could hit a reused fd number.
      if (typeof stream !== 'string') stream.destroy()
    }
  }

  /** POSIX sh has no portable way to read a file's modification time: over exec every file is sent. */
  async unchanged(): Promise<boolean> {
    return false
  }

  async isDirectory(path: string): Promise<boolean> {
    const { answer } = await this.must(`if [ -d ${shellQuote(path)} ]; then echo dir; fi`, `cannot look at ${path}`)
    return answer.text().trim() === 'dir'
  }

  async realpath(dir: string): Promise<string> {
    const { answer } = await this.must(`cd -- ${shellQuote(dir)} && pwd -P`, `cannot resolve ${dir}`)
    return answer.text().trim()
  }

  async tree(dir: string): Promise<{ files: string[]; dirs: string[] }> {
    // NUL-separated, so any file name comes back as it is; a missing directory is an empty tree.
    const script =
      `cd -- ${shellQuote(dir)} 2>/dev/null || exit 0; ` +
      `find . ! -name . -type d -exec printf 'd%s\\0' {} + && find . ! -name . ! -type d -exec printf 'f%s\\0' {} +`
    const { answer } = await this.must(script, `cannot list ${dir}`, undefined, TREE_LISTING_CAP)
    // A listing cut short would make whatever it missed look absent from the host: never used for delete.
    if (answer.cut) throw new Error(`cannot list ${dir}: the listing is larger than ${TREE_LISTING_CAP} bytes, the most ssh-fleet reads`)
    const tree = { files: [] as string[], dirs: [] as string[] }
    for (const entry of answer.text().split('\0')) {
      if (entry.length < 3) continue
      ;(entry[0] === 'd' ? tree.dirs : tree.files).push(entry.slice(3)) // drop the kind and './'
    }
    tree.dirs.sort((a, b) => b.length - a.length) // deepest first, for rmdir
    return tree
  }

  async remove(root: string, files: string[], dirs: string[]): Promise<void> {
    const path = (p: string): string => shellQuote(`${root}/${p}`)
    // The list goes on stdin: no command line limit, however many files.
    const script = [...files.map((f) => `rm -f -- ${path(f)}`), ...dirs.map((d) => `rmdir -- ${path(d)}`)].join(' &&\n')
    await this.must('exec sh', 'could not remove what is not in from', `${script}\n`)
  }

  async close(): Promise<void> {}
}

/**
 * The transport for an upload: SFTP, or exec channels when SFTP cannot be had (the subsystem is
 * refused or exits at once, as on dropbear without sftp-server, or its stream is garbled by a login
 * shell that prints for every session). `note` says why when it falls back.
 */
export async function openRemoteFiles(connection: Connection, note: (message: string) => void, stop: AbortSignal): Promise<RemoteFiles> {
  let failed: ChannelOpenError
  try {
    return new SftpFiles(await connection.sftp(), connection, stop)
  } catch (err) {
    // A refused channel (MaxSessions) or a lost connection is not a missing SFTP server.
    if (!(err instanceof ChannelOpenError) || err.refused || connection.lostReason !== undefined) throw err
    failed = err
  }
  const exec = new ExecFiles(connection, stop)
  // sftp-server runs through the login shell: what the shell prints for every session lands first in the
  // SFTP stream (ssh2 reads "Welc" as a packet length). A command framed by a marker shows that text apart.
  const noise = await exec.loginNoise(`${failed.message}, nor run commands over exec`)
  note(
    noise.bytes().length === 0
      ? `no SFTP on this host (${failed.message}): uploading over exec channels with POSIX sh, every file sent (none compared)`
      : `SFTP unusable: the login shell printed text before the SFTP stream (${shownNoise(noise)}): make it print nothing for ` +
          `non-interactive sessions; uploading over exec channels, that text ignored, every file sent (SFTP said: ${failed.message})`
  )
  return exec
}
