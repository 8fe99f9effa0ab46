import { spawn } from 'node:child_process'
import { Duplex } from 'node:stream'
import { substituteTokens } from '../plan/route'
import { runnerEnv } from '../plan/runner-env'
import type { Host } from '../plan/settings'
import type { ConnectFailure } from './connection'

/**
 * Starts a proxy command for one connection: its stdin and stdout carry the SSH stream, its stderr
 * lines go to `onStderr`. Should it exit while the stream is in use, the stream fails with its exit
 * code and last stderr line (code EPROXY: a transient connect failure); the command is stopped when
 * the stream ends (the connection closed, or the run was cancelled).
 */
export function openProxyCommand(command: string, host: Host, onStderr: (line: string) => void): Promise<Duplex | ConnectFailure> {
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
    : spawn('/bin/sh', ['-c', line], { env: runnerEnv(), stdio: 'pipe' })
  let lastStderr = ''
  let pending = ''
  child.stderr.on('data', (d: Buffer) => {
    const lines = (pending + d.toString()).split(/\r?\n/)
    pending = lines.pop() as string
    for (const l of lines.filter(Boolean)) onStderr((lastStderr = l))
  })
  // The stream ssh2 reads and writes. Writing to a command that exited fails with EPIPE, and its
  // output ends before its exit status is known: both wait for the exit, which says what happened.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal }))
  )
  const failure = async (): Promise<Error | undefined> => {
    const { code, signal } = await exited
    if (pending) onStderr((lastStderr = pending))
    if (code === 0) return undefined
    return Object.assign(
      new Error(`proxy command exited with ${signal ? `signal ${signal}` : `code ${code}`}${lastStderr ? `: ${lastStderr}` : ''}`),
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
      done()
    },
    destroy: (err, done) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
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
  return new Promise((resolve) => {
    child.once('error', (err) => resolve({ kind: 'network', transient: false, message: `proxy command could not start: ${err.message}` }))
    child.once('spawn', () => resolve(stream))
  })
}
