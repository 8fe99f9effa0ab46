import { afterEach, describe, expect, test, vi } from 'vitest'
import { getSettings } from '../../src/plan/inputs'
import { hostOf, stepOf } from '../helpers/results'
import { annotate, failureMessage, warnBeforeRun, type Reporter } from '../../src/report/annotations'
import { fleetMarkdown, summaryMarkdown } from '../../src/report/summary'
import { tally } from '../../src/report/tally'
import { describePlan } from '../../src/report/plan-text'
import { capturedJson, resultsJson } from '../../src/report/action-outputs'
import { table } from '../../src/report/markdown'
import { maskDeep, registerSecret } from '../../src/base/secrets'
import { SharedBudget } from '../../src/base/bounded'
import { Capture } from '../../src/report/output'

const host = hostOf
function recorder(): Reporter & { calls: Array<[string, string, string?]> } {
  const calls: Array<[string, string, string?]> = []
  return {
    calls,
    error: (m, t) => calls.push(['error', m, t]),
    warning: (m, t) => calls.push(['warning', m, t]),
    notice: (m) => calls.push(['notice', m])
  }
}

describe('annotations', () => {
  test("a failed host's annotation and summary quote the step that failed it, not an on-failure step run after", () => {
    const r = recorder()
    const step = stepOf
    const failed = host('web2', 'failed', {
      failedStep: 'migrate',
      error: 'exit code 3',
      steps: [
        step('migrate', { status: 'failed', exitCode: 3, stderrTail: 'disk full' }),
        step('rollback', { phase: 'on-failure', stdoutTail: 'rolled back' })
      ]
    })
    annotate([failed], 1000, r)
    expect(r.calls[0]).toEqual(['error', 'exit code 3\nstderr:\ndisk full', 'web2: migrate'])
    expect(summaryMarkdown({ results: [failed], elapsedMs: 1000, steps: ['migrate'] })).toContain('exit code 3\nstderr:\ndisk full')
    expect(summaryMarkdown({ results: [failed], elapsedMs: 1000, steps: ['migrate'] })).not.toContain('rolled back\n```')
  })

  test('an error per failed host titled with host and step, with the last stderr lines', () => {
    const r = recorder()
    const failed = host('web2', 'failed', {
      failedStep: 'run',
      error: 'exit code 3',
      steps: [
        {
          name: 'run',
          status: 'failed',
          exitCode: 3,
          signal: null,
          durationMs: 5,
          attempts: 1,
          lost: false,
          stdoutTail: '',
          stderrTail: 'l1\nl2\nl3\nl4\nl5\nl6'
        }
      ]
    })
    annotate([host('web1', 'success'), failed, host('db', 'unreachable', { error: 'connection refused' })], 34_200, r)
    expect(r.calls).toEqual([
      ['error', 'exit code 3\nstderr:\nl2\nl3\nl4\nl5\nl6', 'web2: run'],
      ['error', 'connection refused', 'db: connect'],
      ['notice', '1/3 hosts succeeded in 34.2s (1 failed, 1 unreachable)']
    ])
  })

  test('past 9 failed hosts, the failure line of the action is the tenth error: how many more, and where', () => {
    const r = recorder()
    const results = Array.from({ length: 25 }, (_, i) => host(`h${i}`, 'failed', { error: 'boom' }))
    annotate(results, 1000, r)
    expect(r.calls.filter((c) => c[0] === 'error')).toHaveLength(9)
    expect(failureMessage(results)).toBe('25 of 25 hosts failed; 16 more than the annotations above show: the job summary lists every host')
  })

  test('up to 9 failed hosts: an error each, and the failure line names them', () => {
    const r = recorder()
    const results = Array.from({ length: 9 }, (_, i) => host(`h${i}`, i < 3 ? 'failed' : 'success'))
    annotate(results, 1000, r)
    expect(r.calls.filter((c) => c[0] === 'error')).toHaveLength(3)
    expect(failureMessage(results)).toBe('3 of 9 hosts failed: h0, h1, h2')
    expect(failureMessage([host('a', 'success')])).toBeUndefined()
  })

  test('a warning for a host that needed retries; past the slots left, one line says how many more', () => {
    const r = recorder()
    annotate(
      [
        host('web1', 'success', {
          warnings: ['connected after 3 attempts; earlier attempts failed: connection lost before handshake: …MaxStartups…']
        })
      ],
      1000,
      r
    )
    expect(r.calls[0]).toEqual(['warning', expect.stringContaining('MaxStartups'), 'web1: warning'])
    const many = recorder()
    annotate(
      Array.from({ length: 12 }, (_, i) => host(`h${i}`, 'success', { warnings: ['w'] })),
      1000,
      many,
      9
    )
    const warnings = many.calls.filter((c) => c[0] === 'warning')
    expect(warnings).toHaveLength(9)
    expect(warnings[8][1]).toBe('4 more hosts have warnings; the job summary lists every host')
  })

  test("the action's own warnings (host keys unchecked, ssh config) each take a warning slot from the hosts", () => {
    const r = recorder()
    const slots = warnBeforeRun(
      { hostKeys: { mode: 'off', knownHosts: [], fingerprints: [] }, sshConfigWarnings: ['line 3: unknown', 'line 4: unknown'] },
      r
    )
    expect(r.calls).toEqual([
      ['warning', expect.stringContaining('host-key-check is off'), 'Host keys not checked'],
      ['warning', 'line 3: unknown\nline 4: unknown', 'ssh-config']
    ])
    expect(slots).toBe(8)
    expect(warnBeforeRun({ hostKeys: { mode: 'strict', knownHosts: [], fingerprints: [] }, sshConfigWarnings: [] }, recorder())).toBe(10)
  })
})

describe('outputs and summary', () => {
  test('reboot and upload columns appear when the plan has such steps', () => {
    const step = stepOf('s', { durationMs: 1 })
    const md = summaryMarkdown({
      results: [
        host('web1', 'success', {
          steps: [
            { ...step, name: 'reboot', reboot: { downtimeMs: 2100, totalMs: 5000 } },
            {
              ...step,
              name: 'upload',
              transfer: { files: 3, bytes: 2_500_000, unchanged: 0, deleted: 0, bytesPerSecond: 1, transport: 'sftp' }
            }
          ]
        })
      ],
      elapsedMs: 1000,
      steps: ['reboot', 'upload']
    })
    // A column per step; no column that is empty on every host (connect attempts: all first time).
    expect(md).toContain('| Host | Status | reboot | upload | Duration | Reboot downtime | Uploaded |')
    expect(md).toContain('| web1 | ✅ success | ✅ 0.0s | ✅ 0.0s | 1.2s | 2.1s | 3 files, 2.5 MB |')
  })

  test('tally counts every outcome', () => {
    expect(tally([host('a', 'success'), host('b', 'success')], 3456)).toBe('2/2 hosts succeeded in 3.5s')
  })

  test('results JSON has the documented shape', () => {
    const json = JSON.parse(
      resultsJson([
        host('a', 'failed', {
          error: 'x',
          steps: [
            {
              name: 'run',
              status: 'failed',
              exitCode: 3,
              signal: null,
              durationMs: 5,
              attempts: 2,
              lost: false,
              stdoutTail: 'o',
              stderrTail: 'e'
            }
          ]
        })
      ])
    )
    expect(json).toEqual([
      {
        host: 'a',
        status: 'failed',
        exitCode: 3,
        durationMs: 1234,
        attempts: 1,
        error: 'x',
        steps: [{ name: 'run', status: 'failed', exitCode: 3, signal: null, durationMs: 5, attempts: 2, stdoutTail: 'o', stderrTail: 'e' }]
      }
    ])
  })

  test('summary lists every host and the failed ones with their reason; hostile text stays text, byte for byte', () => {
    const hostile = 'exit code 3 <oops>\n\n## Deployment approved ![x](https://evil.example/x.png)\n```\n<script>x</script>'
    const secret = 'pa`ss``w|rd<&>'
    const md = summaryMarkdown({
      results: [
        host('web1', 'success'),
        host('<b>evil</b>', 'failed', {
          error: hostile,
          failedStep: 'deploy *now*',
          steps: [
            {
              name: 'deploy *now*',
              status: 'failed',
              exitCode: 3,
              signal: null,
              durationMs: 1,
              attempts: 1,
              lost: false,
              stdoutTail: '',
              stderrTail: `token ${secret}`
            }
          ]
        })
      ],
      elapsedMs: 1000,
      steps: ['deploy *now*', 'restart']
    })
    // A column per step of the plan, the one no host reached too; none for what is empty everywhere.
    expect(md).toContain('| Host | Status | deploy \\*now\\* | restart | Duration |')
    expect(md).toContain('| web1 | ✅ success |  |  | 1.2s |')
    expect(md).not.toContain('Reboot downtime')
    expect(md).not.toContain('Uploaded')
    expect(md).toContain('| &lt;b&gt;evil&lt;/b&gt; | ❌ failed |')
    expect(md).toContain('**&lt;b&gt;evil&lt;/b&gt;** (step deploy \\*now\\*):')
    // The reason and the stderr tail in a fence longer than their longest backtick run: verbatim.
    expect(md).toContain(['````', ...hostile.split('\n'), 'stderr:', `token ${secret}`, '````'].join('\n'))
    expect(md).not.toContain('<b>')
  })

  test('budgets: a large fleet with big tails keeps the summary and the results output under their limits', () => {
    // As big as bounded tails get: 20 lines of ~400 characters (8 KiB) on both streams of every step.
    const tail = Array.from({ length: 20 }, (_, i) => `${i} ${'x'.repeat(400)}`).join('\n')
    const step = (i: number, status: 'success' | 'failed') => ({
      name: `step ${i}`,
      status,
      exitCode: status === 'failed' ? 1 : 0,
      signal: null,
      durationMs: 5,
      attempts: 1,
      lost: false,
      stdoutTail: tail,
      stderrTail: tail
    })
    const results = Array.from({ length: 2000 }, (_, h) =>
      host(`deploy@host-${h}.example.com`, h % 2 ? 'failed' : 'success', {
        error: 'exit code 1',
        failedStep: 'step 4',
        steps: [0, 1, 2, 3, 4].map((i) => step(i, h % 2 && i === 4 ? 'failed' : 'success'))
      })
    )
    const md = summaryMarkdown({ results, elapsedMs: 1000, steps: [0, 1, 2, 3, 4].map((i) => `step ${i}`) })
    expect(Buffer.byteLength(md)).toBeLessThan(1_000_000)
    expect(md).toMatch(/\d+ more failed hosts are not shown here \(the summary's size limit\)/)
    // Every host's row still fits (`@` escaped: GFM would make the name a mailto link).
    expect(md).toContain('| deploy\\@host-1999.example.com |')
    // 60 hosts: the tails are shortened to whole last lines, never cut inside one.
    const some = JSON.parse(resultsJson(results.slice(0, 60)))
    expect(Buffer.byteLength(resultsJson(results.slice(0, 60)))).toBeLessThanOrEqual(1_000_000)
    expect(some[1]).toMatchObject({ host: 'deploy@host-1.example.com', status: 'failed', error: 'exit code 1' })
    const kept = some[1].steps[4].stderrTail.split('\n')
    expect(kept[0]).toBe('[earlier lines left out: the output size limit]')
    expect(kept.length).toBeGreaterThan(1)
    for (const line of kept.slice(1)) expect(tail.split('\n')).toContain(line)
    // 2000 hosts: even without tails the steps do not fit; every host keeps its own fields.
    const json = resultsJson(results)
    expect(Buffer.byteLength(json)).toBeLessThanOrEqual(1_000_000)
    const all = JSON.parse(json)
    expect(all).toHaveLength(2000)
    expect(all[1]).toMatchObject({
      host: 'deploy@host-1.example.com',
      status: 'failed',
      error: 'exit code 1',
      steps: [],
      stepsLeftOut: true
    })
    // A small fleet's output is whole.
    expect(JSON.parse(resultsJson(results.slice(0, 3)))[1].steps[4].stderrTail).toBe(tail)
  })

  test('every table cell is inert: hostile host, step and signal names render no HTML, link, image, heading or autolink', () => {
    const hostile =
      'x</details>\n## Owned <img src=https://evil.example/p.png> [click](https://evil.example) ![i](//e/x.png) www.evil.example me@evil.example |\u0000\u001b[31m'
    const step = { status: 'failed' as const, exitCode: null, durationMs: 1, attempts: 1, lost: false, stdoutTail: '', stderrTail: '' }
    const results = [
      host(hostile, 'failed', {
        steps: [
          { ...step, name: hostile, signal: hostile },
          { ...step, name: 'two', signal: 'KILL' }
        ]
      })
    ]
    const md = [...summaryMarkdown({ results, elapsedMs: 1000, steps: [hostile, 'two'] }).split('\n'), ...fleetMarkdown(results, [hostile])]
    const cells = md.filter((l) => l.startsWith('|'))
    expect(cells.length).toBeGreaterThan(4)
    for (const row of cells) {
      expect(row).not.toContain('<')
      expect(row).not.toContain('](')
      expect(row).not.toMatch(/https?:\/\//)
      expect(row).not.toMatch(/www\./i)
      expect(row).not.toMatch(/\w@\w/)
      // eslint-disable-next-line no-control-regex -- none may be left
      expect(row).not.toMatch(/[\u0000-\u001f]/)
    }
    // Each row has as many cells as its table's header: no `|` from outside makes a cell of its own.
    const columns = (row: string): number => row.split(/(?<!\\)\|/).length
    md.forEach((l, i) => {
      if (l.startsWith('|') && md[i - 1]?.startsWith('|')) expect(columns(l)).toBe(columns(md[i - 1]))
    })
    expect(md.filter((l) => l.includes('</details>'))).toEqual([])
    expect(md.filter((l) => /^#/.test(l))).toEqual(['## ssh-fleet', '### Failed hosts'])
    // What is shown is still the text, escaped: `\<` never, entities and backslashes only.
    expect(table(['h'], [['a:b@c www.d']])[2]).toBe('| a\\:b\\@c www\\.d |')
  })

  test('outputs and summary cells are masked; captured stdout cut to fit is masked at the cut too', () => {
    const secret = 'hunter2-' + 'z'.repeat(40)
    registerSecret(secret)
    const step = { name: `echo ${secret}`, status: 'success' as const, exitCode: 0, signal: null, durationMs: 1, attempts: 1, lost: false }
    const results = [
      host(`web-${secret}`, 'success', {
        steps: [{ ...step, stdoutTail: `pw ${secret}`, stderrTail: secret, stdout: `${'a'.repeat(900)}${secret}` }]
      })
    ]
    expect(summaryMarkdown({ results, elapsedMs: 1, steps: [`echo ${secret}`] })).not.toContain('hunter2')
    // What the action writes out is masked whole, whatever it quotes.
    expect(JSON.stringify(maskDeep(results))).not.toContain('hunter2')
    // Cut so the secret's first bytes are the last kept: masked all the same.
    for (let cap = 905; cap < 948; cap += 7) {
      const c = new Capture(new SharedBudget(cap))
      c.push(Buffer.from(results[0].steps[0].stdout as string))
      expect(c.text()).toMatch(/^a{900}\*\*\*\n\[ssh-fleet: \d+ more bytes not captured/)
    }
  })

  test('captured: the largest stdouts cut to equal shares, small ones whole, never built past the budget; __proto__ is a host', () => {
    const stdout = (n: number, c = '\u0000') => c.repeat(n)
    const step = (name: string, out: string) => stepOf(name, { durationMs: 1, stdout: out })
    const results = [
      host('__proto__', 'success', { steps: [step('big', stdout(400_000)), step('small', 'ok\n')] }),
      host('b', 'success', { steps: [step('big', stdout(400_000, 'é'))] })
    ]
    const json = capturedJson(results, 200_000)
    expect(Buffer.byteLength(json)).toBeLessThanOrEqual(200_000)
    expect(Buffer.byteLength(json)).toBeGreaterThan(190_000)
    const parsed = JSON.parse(json)
    expect(Object.keys(parsed)).toEqual(['__proto__', 'b'])
    expect(parsed.__proto__.small).toBe('ok\n')
    expect(parsed.b.big).toMatch(/^é+\n\[ssh-fleet: cut to fit/)
    expect(({} as Record<string, unknown>).big).toBeUndefined()
  })
})

describe('dry-run plan', () => {
  afterEach(() => vi.unstubAllEnvs())

  test("one line per host: the resolved user, address, port and route (ssh config's values included)", () => {
    const inputs: Record<string, string> = {
      hosts: 'web-1 root@db:2020',
      password: 'x',
      run: 'true',
      'ssh-config': 'Host web-*\n  HostName 10.0.0.7\n  User deploy\n  Port 27005\n  ProxyJump hop@10.9.9.9\n'
    }
    for (const [k, v] of Object.entries(inputs)) vi.stubEnv(`INPUT_${k.toUpperCase()}`, v)
    const lines = describePlan(getSettings({})).split('\n')
    expect(lines.filter((l) => l.startsWith('  host '))).toEqual([
      '  host web-1: user deploy, address 10.0.0.7, port 27005, route: runner → hop@10.9.9.9 → web-1',
      '  host root@db:2020: user root, address db, port 2020, route: runner → root@db:2020'
    ])
  })
})
