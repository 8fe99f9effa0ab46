/**
 * Hostile bytes stay data. The action's stdout is read the way GitHub's runner reads it (a line ends
 * at \n or \r; `::name` at a line's start or `##[name]` anywhere is a command unless stopped), and the
 * job summary the way Markdown does: nothing a host, a server or a step name says may become a command
 * or live Markdown. The pre-authentication server is a raw TCP one of ours: no real sshd sends a
 * crafted DISCONNECT on cue.
 */
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { Server as SshServer } from 'ssh2'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { hostResult, runAction } from '../helpers/action'
import { useSshd, useWorkspace } from '../helpers/fixtures'
import { runnerCommands } from '../helpers/runner-commands'
import { disconnectingServer } from '../helpers/ssh2-server'
import { hostList, hostName, isRoot, startSshd, type Sshd } from '../helpers/sshd'

const MARK = 'PWNED'
const HOSTILE = `bye\n::error::${MARK}\n::stop-commands::abc\n##[warning]${MARK}\n\n## Deployment approved ${MARK} ![x](https://evil.example/x.png)\n<img src=x onerror=alert(1)>`

/** Summary lines that render as Markdown: those outside fenced code blocks. */
function liveMarkdown(summary: string): string[] {
  const live: string[] = []
  let fence: string | undefined
  for (const line of summary.split('\n')) {
    const m = /^(`{3,})/.exec(line)
    if (fence === undefined && m) fence = m[1]
    else if (fence !== undefined && line === fence) fence = undefined
    else if (fence === undefined) live.push(line)
  }
  return live
}

/** The commands the runner acts on, by name, with how often. */
function commandCounts(stdout: string): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const c of runnerCommands(stdout)) counts[c.name] = (counts[c.name] ?? 0) + 1
  return counts
}

let sshd: Sshd
const workspace = useWorkspace('hostile')
useSshd({ ports: 3 }, (started) => (sshd = started))

describe('hostile servers and output', () => {
  test.each([
    ['several hosts in flight', 2],
    ['one host at a time', 1]
  ] as const)("a server's DISCONNECT text before any host key is accepted: %s", async (_mode, count) => {
    const servers = await Promise.all(Array.from({ length: count }, () => disconnectingServer(HOSTILE)))
    try {
      const ports = servers.map((s) => (s.address() as { port: number }).port)
      const run = await runAction({
        hosts: ports.map((p) => `deploy@127.0.0.1:${p}`).join('\n'),
        password: 'not-used',
        'connect-retries': '0',
        run: 'true'
      })
      expect(run.code).toBe(1)
      for (const r of run.results) {
        expect(r.status).toBe('unreachable')
        expect(r.error).toBe(`the server disconnected (reason 2): ${HOSTILE}`)
      }
      // The runner acts on the action's own commands only: one error per host, the failure line, the tally.
      expect(commandCounts(run.stdout)).toEqual({
        'add-mask': 1,
        'stop-commands': count === 1 ? 2 : 1,
        ...(count === 1 ? { group: 1, endgroup: 1 } : {}),
        error: count + 1,
        notice: 1
      })
      expect(liveMarkdown(run.summary).join('\n')).not.toContain(MARK)
      expect(run.summary).toContain(HOSTILE) // byte for byte, inside a fence
    } finally {
      servers.forEach((s) => s.close())
    }
  })

  test.each([
    ['several hosts in flight', '3'],
    ['one host at a time', '1']
  ] as const)('remote output, a step name and stderr tails: %s', async (_mode, concurrency) => {
    const script = [
      `printf 'progress 50%%\\r::error::${MARK} cr\\n'`,
      `echo 'inline ##[warning]${MARK} legacy'`,
      `echo '::stop-commands::guessed'; echo '::error::${MARK} after a guessed stop'; echo '::guessed::'`,
      `echo '::add-mask::abc'`,
      `echo '##[error]${MARK} on stderr' >&2`,
      'exit 3'
    ].join('\n')
    const steps = `- name: "deploy ##[error]${MARK} ::error::${MARK}"\n  run: |\n${script
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n')}`
    const run = await runAction({
      hosts: hostList(sshd),
      'private-key': sshd.clientKey,
      'known-hosts': sshd.knownHosts,
      concurrency,
      steps
    })
    expect(run.results.map((r) => r.status)).toEqual(['failed', 'failed', 'failed'])
    expect(hostResult(run, hostName(sshd, sshd.ports[0])).steps[0].stderrTail).toBe(`##[error]${MARK} on stderr`)
    const counts = commandCounts(run.stdout)
    // 3 host errors and the failure line; groups only one host at a time (3 hosts × 1 step).
    expect(counts.error).toBe(4)
    expect(counts.warning).toBeUndefined()
    // The private key's masks, all before the first output; the host's ::add-mask:: is just text.
    const commands = runnerCommands(run.stdout)
    const firstFence = commands.findIndex((c) => c.name === 'stop-commands')
    expect(commands.slice(firstFence).some((c) => c.name === 'add-mask')).toBe(false)
    expect(counts['add-mask']).toBe(sshd.clientKey.trim().split('\n').length + 1)
    if (concurrency === '1') expect(counts.group).toBe(3)
    // Every line of remote output is in the log, each attributed to its host when several run.
    if (concurrency === '3') expect(run.stdout).toContain(`[${hostName(sshd, sshd.ports[0])}] ::error::${MARK} cr`)
    expect(liveMarkdown(run.summary).join('\n')).not.toContain('##[error]')
  })

  test.runIf(isRoot)('a host with ed25519 and rsa keys, only its rsa line known: accepted, as OpenSSH does', async () => {
    const both = await startSshd({
      prepare: (dir) => {
        execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-N', '', '-f', join(dir, 'host_rsa')])
        writeFileSync(join(dir, 'sshd_config.0'), `${readFileSync(join(dir, 'sshd_config.0'), 'utf8')}HostKey ${join(dir, 'host_rsa')}\n`)
        writeFileSync(join(dir, 'rsa-line'), readFileSync(join(dir, 'host_rsa.pub'), 'utf8').split(' ').slice(0, 2).join(' '))
      }
    })
    try {
      const rsaOnly = `[127.0.0.1]:${both.ports[0]} ${readFileSync(join(both.dir, 'rsa-line'), 'utf8')}`
      const run = await runAction({ hosts: hostList(both), 'private-key': both.clientKey, 'known-hosts': rsaOnly, run: 'echo in' })
      expect(run.results[0].status, run.stdout).toBe('success')
      expect(run.stdout).toMatch(/host key ssh-rsa SHA256:\S+ accepted by known-hosts line 1/)
    } finally {
      await both.stop()
    }
  })

  test.runIf(isRoot)('upload to: ~ lands in the login home, not in a file named ~', async () => {
    mkdirSync(join(workspace, 'drop'), { recursive: true })
    writeFileSync(join(workspace, 'drop/hello.txt'), 'hello')
    const home = `/home/${sshd.user}`
    rmSync(join(home, 'hello.txt'), { force: true })
    const run = await runAction(
      {
        hosts: hostName(sshd, sshd.ports[0]),
        'private-key': sshd.clientKey,
        'known-hosts': sshd.knownHosts,
        steps: '- upload: { from: drop/hello.txt, to: "~" }'
      },
      { env: { GITHUB_WORKSPACE: workspace } }
    )
    expect(run.code, run.stdout).toBe(0)
    expect(readFileSync(join(home, 'hello.txt'), 'utf8')).toBe('hello')
    expect(existsSync(join(home, '~'))).toBe(false)
    rmSync(join(home, 'hello.txt'), { force: true })
  })

  test('a host echoing the password input: masked in every output and in the summary, also cut at a limit', async () => {
    const password = 'Pw-echoed_by-the-host-7f3a'
    const run = await runAction({
      hosts: hostList(sshd, sshd.ports.slice(0, 2)),
      'private-key': sshd.clientKey,
      'known-hosts': sshd.knownHosts,
      password,
      concurrency: '2',
      steps: [
        '- name: echo',
        '  capture: true',
        `  run: echo "said ${password}"; echo "${password}" >&2; head -c 2000000 /dev/zero | tr "\\0" a; echo ${password}`,
        '- name: fail',
        `  run: echo "${password}" >&2; exit 1`
      ].join('\n')
    })
    expect(run.results.map((r) => r.status)).toEqual(['failed', 'failed'])
    for (const name of ['results', 'captured', 'succeeded', 'failed']) expect(run.outputs[name]).toBeDefined()
    const written = [...Object.values(run.outputs), run.summary].join('\n')
    expect(written).not.toContain(password)
    // Nor its start at a cut end: every piece of it of 4 characters or more.
    for (let i = 4; i < password.length; i++) expect(written).not.toContain(password.slice(0, i) + '\n')
    expect(run.results[0].steps[0].stderrTail).toBe('***')
    expect(run.summary).toContain('***')
  })

  test("a host's exit-signal name with HTML, a heading, links and autolinks: the summary's tables render it as text", async () => {
    const signal =
      'KILL</details>\n## Owned <img src=https://evil.example/p.png> [x](https://evil.example) www.evil.example ops@evil.example |'
    // No real sshd sends a made-up signal name: an ssh2 Server of ours answers the first step with
    // exit 0 and the second with that signal (ssh2 sends only names on its list, upper-cased: ours is added).
    ;(createRequire(__filename)('ssh2/lib/protocol/constants') as { SIGNALS: Record<string, number> }).SIGNALS[signal.toUpperCase()] = 1
    // ssh2 sometimes generates an ed25519 key it cannot parse back: the demo's generator retries.
    const { generateKey } = await import('../../demo/fleet.js')
    const key = generateKey()
    let steps = 0
    const server = new SshServer({ hostKeys: [key.private] }, (client) => {
      client.on('error', () => {})
      client.on('authentication', (ctx) => ctx.accept())
      client.on('session', (accept) =>
        accept().on('exec', (acceptExec) => {
          const channel = acceptExec()
          channel.on('error', () => {})
          channel.resume()
          channel.once('end', () => {
            if (++steps === 1) channel.exit(0)
            else channel.exit(signal, false, '')
            channel.end()
          })
        })
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    try {
      const run = await runAction({
        hosts: `deploy@127.0.0.1:${port}`,
        password: 'any',
        'known-hosts': `[127.0.0.1]:${port} ${key.public}`,
        steps: '- name: one\n  run: "true"\n- name: two\n  run: "true"'
      })
      expect(run.results[0].steps[1].signal).toContain('</DETAILS>')
      // A signal name is a word: a host's longer text is held cut, wherever it goes next.
      expect(run.results[0].steps[1].signal).toMatch(/… \(cut at 64 of \d+ characters\)$/)
      const live = liveMarkdown(run.summary)
      const rows = live.filter((l) => l.startsWith('|'))
      expect(rows.filter((l) => l.includes('KILL'))).toHaveLength(1) // the signal's row, whole on one line
      for (const line of live) {
        expect(line).not.toMatch(/<(?!\/?details>|summary>|\/summary>)/)
        expect(line).not.toContain('](')
        expect(line).not.toMatch(/https?:\/\/|www\.|\w@\w/i)
        expect(line).not.toMatch(/^#+ Owned/i)
      }
      // No HTML of the action's own in the summary now: none from the host either.
      expect(live.filter((l) => /<\/details>/i.test(l))).toEqual([])
    } finally {
      server.close()
    }
  })
})
