import { mask } from '../base/secrets'
import { spawn, type ChildProcess } from 'node:child_process'
import { Duplex } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import { substituteTokens } from '../plan/route'
import { runnerEnv } from '../plan/runner-env'
import type { Host } from '../plan/settings'
import type { ConnectFailure } from './connect-errors'

/** Longest stderr line of a proxy command kept (logged, quoted in an error); the rest of it is dropped. */
const STDERR_LINE = 1024
/** stderr lines of one proxy command logged: a bastion flooding banners must not flood the log. */
const STDERR_LINES = 20
/** After its stdin ended, how long a proxy command gets to exit by itself before its group is killed. */
const EXIT_GRACE_MS = 2000

/**
 * A proxy command's stderr as lines, within bounds: each line cut at STDERR_LINE (an endless line
 * holds no more than that), the first STDERR_LINES logged and the rest only counted.
 */
export class StderrLines {
  private readonly decoder = new StringDecoder('utf8')
  private pending = ''
  /** The open line passed STDERR_LINE: what follows until its newline is dropped. */
  private overlong = false
  private logged = 0
  /** Lines not logged (past STDERR_LINES). */
  left = 0
  /** The last line, for the error when the command fails. */
  last = ''

  constructor(private readonly log: (line: string) => void) {}

  push(chunk: Buffer): void {
    const parts = this.decoder.write(chunk).split(/\r?\n/)
    const open = parts.pop() as string
    for (const part of parts) {
      this.take(part)
      if (!this.overlong) this.line(this.pending)
      this.overlong = false
      this.pending = ''
    }
    this.take(open)
  }

  /** The open line, if any, as the last one. */
  end(): void {
    this.take(this.decoder.end())
    if (!this.overlong) this.line(this.pending)
    this.pending = ''
  }

  /** Adds `text` to the open line, emitting it cut when it grows past STDERR_LINE. */
  private take(text: string): void {
    if (this.overlong) return
    this.pending += text
    if (this.pending.length <= STDERR_LINE) return
    // A secret's start left at the cut is masked: the runner's masker knows only whole secrets.
    this.line(`${mask(this.pending.slice(0, STDERR_LINE), { cut: true })} [cut]`)
    this.overlong = true
  }

  private line(text: string): void {
    if (!text) return
    this.last = text
    if (this.logged < STDERR_LINES) {
      this.logged++
      this.log(text)
    } else this.left++
  }
}

/**
 * The proxy commands of a run. Each runs in a process group of its own (a job object's tree on
 * Windows), killed whole when its stream ends, and on close() for any still alive: a proxy that left
 * a child running (a flooding banner loop, a control master) cannot outlive the action or keep it
 * from exiting.
 */
export class ProxyCommands {
  private readonly alive = new Set<ChildProcess>()

  constructor() {
    // Also when the process ends without close() (a second cancel signal exits at once): its own group
    // keeps a proxy command from the runner's signals, so this is its only way out.
    process.once('exit', () => this.close())
  }

  /**
   * Starts a proxy command for one connection: its stdin and stdout carry the SSH stream, its stderr
   * lines go to `onStderr` (bounded, see StderrLines). Should it exit while the stream is in use, the
   * stream fails with its exit code and last stderr line (code EPROXY: a transient connect failure).
   */
  open(command: string, host: Host, onStderr: (line: string) => void): Promise<Duplex | ConnectFailure> {
    let line: string
    try {
      line = substituteTokens(command, host)
    } catch (err) {
      return Promise.resolve({ kind: 'protocol', transient: false, message: (err as Error).message })
    }
    const windows = process.platform === 'win32'
    const child = windows
      ? spawn(process.env.ComSpec ?? 'cmd.exe', ['/d', '/s', '/c', `"${line}"`], {
          env: runnerEnv(),
          stdio: 'pipe',
          windowsVerbatimArguments: true
        })
      : spawn('/bin/sh', ['-c', line], { env: runnerEnv(), stdio: 'pipe', detached: true })
    this.alive.add(child)
    const stderr = new StderrLines(onStderr)
    child.stderr.on('data', (d: Buffer) => stderr.push(d))
    let graceTimer: NodeJS.Timeout | undefined
    let stopped = false
    /** Kills the command's whole group, once; names the stderr lines that were not logged. */
    const stop = (): void => {
      if (stopped) return
      stopped = true
      clearTimeout(graceTimer)
      this.kill(child)
      if (stderr.left > 0) onStderr(`${stderr.left} more stderr lines not logged (the first ${STDERR_LINES} of a connection are)`)
    }
    // The stream ssh2 reads and writes. Writing to a command that exited fails with EPIPE, and its
    // output ends before its exit status is known: both wait for the exit, which says what happened.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal }))
    )
    const failure = async (): Promise<Error | undefined> => {
      const { code, signal } = await exited
      stderr.end()
      if (code === 0) return undefined
      return Object.assign(
        new Error(`proxy command exited with ${signal ? `signal ${signal}` : `code ${code}`}${stderr.last ? `: ${stderr.last}` : ''}`),
        { code: 'EPROXY' }
      )
    }
    const stream = new Duplex({
      read: () => void child.stdout.resume(),
      write: (chunk, encoding, done) => {
        if (!child.stdin.writable) return done()
        child.stdin.write(chunk, encoding, () => done())
      },
      final: (done) => {
        child.stdin.end()
        graceTimer = setTimeout(stop, EXIT_GRACE_MS)
        done()
      },
      destroy: (err, done) => {
        stop()
        done(err)
      }
    })
    child.stdin.on('error', () => {})
    child.stdout.on('data', (d: Buffer) => {
      if (!stream.push(d)) child.stdout.pause()
    })
    child.stdout.on('end', () => {
      void failure().then((err) => (err ? stream.destroy(err) : stream.push(null)))
    })
    // The command itself exited: whatever it left running in its group goes with it.
    void exited.then(stop)
    return new Promise((resolve) => {
      child.once('error', (err) => {
        this.alive.delete(child)
        resolve({ kind: 'network', transient: false, message: `proxy command could not start: ${err.message}` })
      })
      child.once('spawn', () => resolve(stream))
    })
  }

  /** Kills every proxy command still alive, with its group. */
  close(): void {
    for (const child of this.alive) this.kill(child)
  }

  private kill(child: ChildProcess): void {
    this.alive.delete(child)
    if (child.pid === undefined) return
    try {
      if (process.platform === 'win32')
        spawn('taskkill', ['/pid', String(child.pid), '/T', '/F'], { stdio: 'ignore' }).on('error', () => {})
      else process.kill(-child.pid, 'SIGKILL')
    } catch {
      // The group is gone already.
    }
  }
}
