import { execFileSync } from 'node:child_process'
import { describe, expect, test } from 'vitest'
import type { RunStep } from '../../src/settings'
import { remoteCommand, scriptPayload, shellQuote } from '../../src/steps'

const step = (script: string, env: Record<string, string> = {}): RunStep => ({ kind: 'run', name: 'run', script, env, timeoutMs: 0, retries: 0, retryDelayMs: 0, continueOnError: false, runOnce: false })

/** Runs the remote command locally the way sshd does: the login shell gets it as one -c string. */
function runLikeSshd(payload: string, shell = 'bash -e'): string {
  return execFileSync('/bin/sh', ['-c', remoteCommand(shell)], { input: payload, encoding: 'utf8' })
}

// These run the remote command in a local POSIX sh, which Windows runners do not have.
describe.skipIf(process.platform === 'win32')('remote command', () => {
  test('shellQuote survives every quote character', () => {
    const nasty = `it's "quoted" \`tick\` $HOME \\ \n new line`
    expect(execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote(nasty)}`], { encoding: 'utf8' })).toBe(nasty)
  })

  test('the script runs byte for byte with empty stdin, and env values arrive intact', () => {
    const script = `printf '%s|' "$A" "$B" "$(cat)" 'x y'\ncat <<'EOF'\n$NOT_EXPANDED héllo\nEOF\n`
    const out = runLikeSshd(scriptPayload(step(script, { A: "it's", B: 'a\nb $HOME' })))
    expect(out).toBe(`it's|a\nb $HOME||x y|$NOT_EXPANDED héllo\n`)
  })

  test('the exit code of the script is the exit code of the session', () => {
    expect(() => runLikeSshd('exit 7')).toThrow(expect.objectContaining({ status: 7 }))
    expect(() => runLikeSshd('false\necho unreachable', 'sh -e')).toThrow(expect.objectContaining({ status: 1 }))
  })

  test('no env means the payload is the script itself', () => {
    expect(scriptPayload(step('echo hi'))).toBe('echo hi')
  })
})
