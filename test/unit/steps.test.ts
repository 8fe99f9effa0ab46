import { execFileSync, spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import type { RunStep } from '../../src/plan/settings'
import { alive } from '../helpers/sshd'
import { remoteCommand, scriptPayload, shellQuote, stopCommand } from '../../src/steps/remote-shell'

const step = (script: string, env: Record<string, string> = {}): RunStep => ({
  kind: 'run',
  name: 'run',
  script,
  env,
  timeoutMs: 0,
  retries: 0,
  retryDelayMs: 0,
  continueOnError: false,
  runOnce: false,
  capture: false,
  sudo: false,
  pty: false
})

/** Every temporary file of these tests lives here, and goes at the end. */
const scratch = mkdtempSync(join(tmpdir(), 'ssh-fleet-steps-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** The remote command behind a real pipe(2), as OpenSSH on Linux gives it (node's own stdio is a socketpair). */
function piped(shell: string): string {
  return `cat | { ${remoteCommand(shell)}; }`
}

/**
 * Runs the remote command locally the way sshd does: the login shell gets it as one -c string, and
 * stdin is a pipe (OpenSSH on Linux) or something else (here a file: the temp-file path).
 */
/** A script as the bootstrap takes it on stdin: the step id's line first. */
const ID = 'feedc0de'
const withId = (script: string): string => `${ID}\n${script}`

function runLikeSshd(payload: string, shell = 'bash -e', via: 'pipe' | 'file' = 'pipe'): string {
  if (via === 'pipe') return execFileSync('/bin/sh', ['-c', piped(shell)], { input: payload, encoding: 'utf8' })
  const file = join(mkdtempSync(join(scratch, 'stdin-')), 'stdin')
  writeFileSync(file, payload)
  const fd = openSync(file, 'r')
  try {
    return execFileSync('/bin/sh', ['-c', remoteCommand(shell)], { stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8' })
  } finally {
    closeSync(fd)
  }
}

// These run the remote command in a local POSIX sh, which Windows runners do not have.
describe.skipIf(process.platform === 'win32')('remote command', () => {
  test('shellQuote survives every quote character', () => {
    const nasty = `it's "quoted" \`tick\` $HOME \\ \n new line`
    expect(execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote(nasty)}`], { encoding: 'utf8' })).toBe(nasty)
  })

  test.each(['pipe', 'file'] as const)('stdin a %s: the script runs byte for byte with empty stdin, env values intact', (via) => {
    const script = `printf '%s|' "$A" "$B" "$(cat)" 'x y'\ncat <<'EOF'\n$NOT_EXPANDED héllo\nEOF\n`
    const fleet = { FLEET_HOST: 'web1', FLEET_STEP: "it's $(step) `1`" }
    const out = runLikeSshd(scriptPayload(step(script, { A: "it's", B: 'a\nb $HOME' }), ID, fleet), 'bash -e', via)
    expect(out).toBe(`it's|a\nb $HOME||x y|$NOT_EXPANDED héllo\n`)
    const where = runLikeSshd(scriptPayload(step('printf "%s|" "$FLEET_HOST" "$FLEET_STEP"'), ID, fleet), 'sh -e', via)
    expect(where).toBe("web1|it's $(step) `1`|")
  })

  test.each(['pipe', 'file'] as const)('stdin a %s: the exit code of the script is the exit code of the session', (via) => {
    expect(() => runLikeSshd(withId('exit 7'), 'bash -e', via)).toThrow(expect.objectContaining({ status: 7 }))
    expect(() => runLikeSshd(withId('false\necho unreachable'), 'sh -e', via)).toThrow(expect.objectContaining({ status: 1 }))
  })

  test('the temp-file path leaves no file behind', () => {
    const dir = mkdtempSync(join(scratch, 'tmpdir-'))
    const file = join(dir, 'stdin')
    writeFileSync(file, withId('ls "$TMPDIR" | wc -l'))
    const fd = openSync(file, 'r')
    const staging = mkdtempSync(join(scratch, 'staging-'))
    try {
      const out = execFileSync('/bin/sh', ['-c', remoteCommand('sh -e')], {
        stdio: [fd, 'pipe', 'pipe'],
        encoding: 'utf8',
        env: { ...process.env, TMPDIR: staging }
      })
      expect(out.trim()).toBe('0')
      expect(readdirSync(staging)).toEqual([])
    } finally {
      closeSync(fd)
    }
  })

  test('stopped by TERM while the script is staged (the stop by step id reaches sh and cat), no copy is left', async () => {
    const staging = mkdtempSync(join(scratch, 'staging-'))
    // node's stdio is a socketpair, which the bootstrap cannot reopen: it stages the script.
    const sh = spawn('/bin/sh', ['-c', remoteCommand('sh -e')], { detached: true, env: { ...process.env, TMPDIR: staging } })
    sh.stdin.write(withId('export DEPLOY_TOKEN=secret\n')) // the rest never comes: cat waits
    const until = async (done: () => boolean): Promise<void> => {
      for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 10))
    }
    await until(() => readdirSync(staging).length > 0)
    expect(readdirSync(staging)).toHaveLength(1)
    process.kill(-(sh.pid as number), 'SIGTERM')
    // The login shell (here /bin/sh -c) ends at once; the bootstrap's own sh a moment later.
    await until(() => readdirSync(staging).length === 0)
    expect(readdirSync(staging)).toEqual([])
  })

  test('a pipe needs no temp file; anything else is staged in TMPDIR (exit 125 when that fails)', () => {
    const env = { ...process.env, TMPDIR: '/nonexistent-ssh-fleet' }
    expect(execFileSync('/bin/sh', ['-c', piped('sh -e')], { input: withId('echo piped'), encoding: 'utf8', env })).toBe('piped\n')
    const file = join(mkdtempSync(join(scratch, 'stdin-')), 'stdin')
    writeFileSync(file, withId('echo staged'))
    const fd = openSync(file, 'r')
    try {
      expect(() => execFileSync('/bin/sh', ['-c', remoteCommand('sh -e')], { stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8', env })).toThrow(
        expect.objectContaining({
          status: 125,
          stderr: expect.stringContaining(
            'ssh-fleet: could not write the script to a temporary file in /nonexistent-ssh-fleet (TMPDIR on the host)'
          )
        })
      )
    } finally {
      closeSync(fd)
    }
  })

  test('the script and its children carry the step id; the temp-file path keeps the umask', () => {
    const out = runLikeSshd(withId('echo "$FLEET_STEP_ID"; sh -c \'echo "$FLEET_STEP_ID"\'; umask'), 'sh -e', 'file')
    expect(out.split('\n').slice(0, 2)).toEqual(['feedc0de', 'feedc0de'])
    expect(out.split('\n')[2]).toBe(execFileSync('/bin/sh', ['-c', 'umask'], { encoding: 'utf8' }).trim())
  })

  test.runIf(process.platform === 'linux')('the stop command ends every process with the step id, and only those', async () => {
    const { spawn } = await import('node:child_process')
    const env = (id: string) => ({ ...process.env, FLEET_STEP_ID: id })
    // A shell whose child ignores the parent's death: what dropbear's direct-child signal leaves running.
    const target = spawn('/bin/sh', ['-c', 'sleep 30 & sleep 30; wait'], { env: env('0123456789abcdef'), stdio: 'ignore' })
    const bystander = spawn('/bin/sh', ['-c', 'sleep 30'], { env: env('fedcba9876543210'), stdio: 'ignore' })
    await new Promise((r) => setTimeout(r, 300))
    const answer = execFileSync('/bin/sh', ['-c', stopCommand('0123456789abcdef', 'TERM')], { encoding: 'utf8' })
    expect(answer).toMatch(/^found: \d+ \d+ \d+\n$/)
    const pids = answer.slice('found: '.length).trim().split(' ')
    expect(pids).toContain(String(target.pid))
    expect(pids).toHaveLength(3) // the shell and both sleeps
    await new Promise((r) => setTimeout(r, 300))
    for (const pid of pids) expect(alive(pid)).toBe(false)
    expect(alive(bystander.pid as number)).toBe(true)
    expect(execFileSync('/bin/sh', ['-c', stopCommand('0123456789abcdef', 'KILL')], { encoding: 'utf8' })).toBe('found:\n')
    bystander.kill('SIGKILL')
  })

  test("no env and no variables means the payload is the step id's line, then the script itself", () => {
    expect(scriptPayload(step('echo hi'), ID, {})).toBe('feedc0de\necho hi')
  })

  test('on a pty the byte count of what follows comes first: its stdin never ends', () => {
    expect(scriptPayload({ ...step('é'), pty: true }, ID, { A: '1' })).toBe("feedc0de\n15\nexport A='1'\né")
    expect(remoteCommand('bash -e', undefined, true)).toContain('head -c "$n"')
  })

  test('the FLEET_* variables win over an env of the same name, as for local steps', () => {
    expect(scriptPayload(step('x', { FLEET_HOST: 'mine', A: '1' }), ID, { FLEET_HOST: 'web1' })).toBe(
      "feedc0de\nexport FLEET_HOST='web1' A='1'\nx"
    )
  })

  test('the command is the same for every step (so a channel can be opened ahead): the id travels on stdin', () => {
    expect(remoteCommand('bash -e')).not.toContain(ID)
    expect(runLikeSshd(withId('echo "$FLEET_STEP_ID" "$(cat | wc -c)"'))).toBe('feedc0de 0\n')
  })
})
