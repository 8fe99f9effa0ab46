/**
 * Nothing a host, a server or a proxy command sends can sink the run: each bound measured under its
 * flood (time, peak RSS), against a real sshd where it can misbehave on cue, and an ssh2 Server of
 * ours where it cannot (no real sshd answers a stop command with 600 MB).
 */
import { execFileSync } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { Server } from 'ssh2'
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { generateKey } = require('../../demo/fleet.js') as { generateKey: () => { private: string; public: string } }
import { describe, expect, test } from 'vitest'
import { hostResult, runAction } from '../helpers/action'
import { useSshd } from '../helpers/fixtures'
import { NODE_NC } from '../helpers/node-nc'
import { hostList, hostName, type Sshd } from '../helpers/sshd'

let sshd: Sshd
useSshd({ ports: 16 }, (started) => (sshd = started))

/** Processes whose command line holds `marker` (pgrep -f), this test's own excluded. */
function processesWith(marker: string): string[] {
  try {
    return execFileSync('pgrep', ['-a', '-f', marker], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l && !l.includes('pgrep'))
  } catch {
    return [] // pgrep exits 1 when nothing matches
  }
}

/**
 * A host that takes any password, never ends a step, and answers every other command (the stop by
 * step id of a timed-out step) with `bytes` of output, as fast as the client takes it.
 */
function floodingAnswerServer(bytes: number): Promise<{ server: Server; port: number; knownHost: (port: number) => string }> {
  // ssh2 sometimes generates an ed25519 key it cannot parse back: the demo's generator retries.
  const key = generateKey()
  const server = new Server({ hostKeys: [key.private] }, (client) => {
    client.on('error', () => {})
    client.on('authentication', (ctx) => ctx.accept())
    client.on('session', (acceptSession) => {
      const session = acceptSession()
      session.on('exec', (accept, _reject, info) => {
        const channel = accept()
        channel.on('error', () => {})
        if (!info.command.includes('found:')) return // the step: runs until signalled
        const block = Buffer.alloc(1024 * 1024, 'found: 1 ')
        let sent = 0
        let open = true
        channel.on('close', () => (open = false))
        const send = (): void => {
          while (open && sent < bytes) {
            sent += block.length
            if (!channel.write(block)) return void channel.once('drain', send)
          }
          if (open) channel.exit(0)
          if (open) channel.end()
        }
        send()
      })
    })
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        knownHost: (port) => `[127.0.0.1]:${port} ${key.public}`
      })
    )
  )
}

describe('bounds under a flood', () => {
  test("one host prints 3,000,000 empty lines: another host's 5 s step still takes about 5 s", async () => {
    const [flood, timed] = sshd.ports
    const run = await runAction(
      {
        hosts: hostList(sshd, [flood, timed]),
        'private-key': sshd.clientKey,
        'known-hosts': sshd.knownHosts,
        concurrency: '2',
        run: `if [ "\${SSH_CONNECTION##* }" = ${flood} ]; then yes '' | head -n 3000000; exit 1; else sleep 5; fi`
      },
      { commandsOnly: true, rusage: true }
    )
    expect(hostResult(run, hostName(sshd, timed)).status).toBe('success')
    expect(hostResult(run, hostName(sshd, flood)).status).toBe('failed')
    // The flood shares the action's one thread: line work per line is O(1), so it slows no one much.
    expect(hostResult(run, hostName(sshd, timed)).steps[0].durationMs).toBeLessThan(8000)
    expect(run.usage!.maxRssKb).toBeLessThan(400 * 1024)
  }, 120_000)

  test('a stop command answered with 600 MB: cut at a few KiB, the host reported, memory flat', async () => {
    const { server, port, knownHost } = await floodingAnswerServer(600 * 1024 * 1024)
    try {
      const run = await runAction(
        {
          hosts: `deploy@127.0.0.1:${port}`,
          password: 'any',
          'known-hosts': knownHost(port),
          steps: '- name: hangs\n  run: sleep 600\n  timeout: 1'
        },
        { rusage: true, timeoutMs: 90_000 }
      )
      expect(run.code, run.stderr).toBe(1)
      expect(run.results[0].status).toBe('failed')
      expect(run.results[0].steps[0].error).toMatch(/^timed out after 1s/)
      expect(run.summary).toContain('hangs')
      expect(run.usage!.maxRssKb).toBeLessThan(150 * 1024)
    } finally {
      server.close()
    }
  }, 120_000)

  test('16 hosts × 6 captured steps of 1 MiB (NUL bytes, 6 JSON bytes each): every host reported, outputs within limits', async () => {
    const step = (i: number): string => `- name: s${i}\n  run: head -c 1048576 /dev/zero\n  capture: true`
    const run = await runAction(
      {
        hosts: hostList(sshd),
        'private-key': sshd.clientKey,
        'known-hosts': sshd.knownHosts,
        concurrency: '16',
        steps: [1, 2, 3, 4, 5, 6].map(step).join('\n')
      },
      { commandsOnly: true, rusage: true, timeoutMs: 180_000 }
    )
    expect(run.code, run.stderr).toBe(0)
    expect(run.results).toHaveLength(16)
    expect(run.results.every((r) => r.status === 'success')).toBe(true)
    expect(Buffer.byteLength(run.outputs.results)).toBeLessThanOrEqual(1_000_000)
    expect(Buffer.byteLength(run.outputs.captured)).toBeLessThanOrEqual(1_000_000)
    const captured = JSON.parse(run.outputs.captured) as Record<string, Record<string, string>>
    expect(Object.keys(captured)).toHaveLength(16)
    // Past the run's budget the rest is dropped, counted and named in the step's text.
    const texts = Object.values(captured).flatMap((steps) => Object.values(steps))
    expect(texts).toHaveLength(96)
    expect(texts.some((t) => /\[ssh-fleet: \d+ more bytes not captured: the run's captures reached 800000 bytes\]$/.test(t))).toBe(true)
    expect(run.summary).toContain('16/16 hosts succeeded')
    expect(run.usage!.maxRssKb).toBeLessThan(500 * 1024)
  }, 200_000)

  test('a proxy command that leaves a child flooding stderr: bounded log, the action exits with every process gone', async () => {
    const marker = `fleet-proxy-flood-${process.pid}`
    // The child ignores the signals a dying pipe or a polite stop sends: only its group's kill ends it.
    const flood = `trap '' PIPE TERM HUP INT; head -c 300000 /dev/zero | tr '\\0' x >&2; while :; do echo "banner ${marker}" >&2 || sleep 0.01; done`
    const command = `(${flood}) & exec ${NODE_NC} %h %p`
    try {
      const run = await runAction(
        {
          hosts: hostName(sshd, sshd.ports[0]),
          'private-key': sshd.clientKey,
          'known-hosts': sshd.knownHosts,
          'proxy-command': command,
          run: 'sleep 2; echo through the proxy'
        },
        { rusage: true, timeoutMs: 60_000 }
      )
      expect(run.code, run.stdout.slice(-2000)).toBe(0)
      expect(run.results[0].steps[0].stdoutTail).toBe('through the proxy')
      // Reported, then gone: no proxy process waited on, none left behind.
      expect(run.durationMs).toBeLessThan(20_000)
      expect(processesWith(marker)).toEqual([])
      // A line without end is cut; at most 20 lines logged for the connection, then how many more there were, once.
      const logged = run.stdout.split('\n').filter((l) => l.includes('» proxy command: '))
      expect(logged[0]).toMatch(/proxy command: x{1024} \[cut\]$/)
      expect(logged.length).toBeLessThanOrEqual(21)
      expect(logged.at(-1)).toMatch(/proxy command: \d+ more stderr lines not logged \(the first 20 of a connection are\)$/)
      expect(run.usage!.maxRssKb).toBeLessThan(200 * 1024)
    } finally {
      for (const line of processesWith(marker)) process.kill(Number(line.split(' ')[0]), 'SIGKILL')
    }
  }, 90_000)
})
