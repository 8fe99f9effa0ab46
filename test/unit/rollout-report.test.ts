import { describe, expect, test } from 'vitest'
import { hostOf, stepOf } from '../helpers/results'
import { mermaidText } from '../../src/report/markdown'
import { Timeline, TIMELINE_BARS, TIMELINE_HOST_SECTIONS } from '../../src/report/timeline'
import { PROGRESS_EVERY_MS, RolloutLog, hostSpan } from '../../src/report/rollout-log'
import { size } from '../../src/report/units'
import { RUN_LINK, runLink } from '../../src/report/run-link'
import { shardLinks, stepTitle, summaryMarkdown } from '../../src/report/summary'
import { failureMessage } from '../../src/report/annotations'
import { hostFromJson, hostJson } from '../../src/report/results-json'
import { registerSecret } from '../../src/base/secrets'
import type { Halt, HostResult } from '../../src/base/results'
import type { Host } from '../../src/plan/settings'

const hostNamed = (name: string, index = 0): Host => ({ name, user: 'u', hostname: name, port: 22, index })

/** Names a host, a step or a server could bring: each tries to end a label, a line, the block or the diagram. */
const HOSTILE = [
  'web`1',
  '```\n## owned',
  'a\nclick web1 call alert(1)',
  'click web1 href "https://evil.example"',
  'CLICK x',
  'section evil',
  'dateFormat YYYY',
  '%%{init: {"theme": "dark", "securityLevel": "loose"}}%%',
  'host:22',
  'a;b#c',
  '#35; entity',
  'x :crit, 0, 99999999999',
  '__proto__',
  'constructor',
  'toString',
  '',
  '   ',
  '\u0000\u001b[31m\u202e',
  '<img src=x onerror=alert(1)>',
  'a'.repeat(500),
  '---\nconfig:\n  theme: dark\n---'
]

describe('mermaidText: the one way outside text enters a Mermaid diagram', () => {
  test.each(HOSTILE.map((h) => [JSON.stringify(h).slice(0, 60), h]))('%s stays one inert label', (_, text) => {
    const label = mermaidText(text)
    // eslint-disable-next-line no-control-regex -- none may be left
    expect(label).not.toMatch(/[\r\n\u2028\u2029`:;#%{}"'<>\u0000-\u001f\u202e]/)
    expect(label.trim()).not.toBe('')
    expect(label).not.toMatch(/^(click|section|dateformat|call|href|---)/i)
    expect(label in Object.prototype).toBe(false)
    expect([...label].length).toBeLessThanOrEqual(62)
  })

  test('plain names read as written; a port keeps its look', () => {
    expect(mermaidText('deploy@web-1.example.com')).toBe('deploy@web-1.example.com')
    expect(mermaidText('deploy@[2001:db8::1]:2222')).toBe('deploy@[2001∶db8∶∶1]∶2222')
    expect(mermaidText('Install packages (apt)')).toBe('Install packages (apt)')
    expect(mermaidText('__proto__')).toBe('‣ __proto__')
    expect(mermaidText('click')).toBe('‣ click')
  })

  test('a secret in a name is masked before it is drawn', () => {
    registerSecret('s3cr3t-value-for-mermaid')
    expect(mermaidText('host-s3cr3t-value-for-mermaid')).not.toContain('s3cr3t')
  })
})

describe('timeline', () => {
  const steps = ['deploy', 'restart']

  /** Each hostile name as a host and a step; every line of the chart checked against the gantt syntax we write. */
  test('hostile host and step names: every line of the chart is a section, a bar or our own header', () => {
    const t = new Timeline()
    const hosts = HOSTILE.map((h, i) => hostNamed(h, i))
    t.batchStarted(1, 1, hosts)
    const results = hosts.map((h, i) => {
      t.stepRan(h, 0, 1_000_000 + i, 1_000_500 + i)
      t.stepRan(h, 1, 1_000_600 + i, 1_000_900 + i)
      return hostOf(h.name, 'success', { steps: [stepOf(HOSTILE[i]), stepOf(HOSTILE[(i + 1) % HOSTILE.length])] })
    })
    const { lines, left } = t.gantt(results, HOSTILE)
    expect(left).toBe(0)
    expect(lines[0]).toBe('```mermaid')
    expect(lines[lines.length - 1]).toBe('```')
    const body = lines.slice(1, -1)
    expect(body.slice(0, 3)).toEqual(['gantt', '    dateFormat x', '    axisFormat %H:%M:%S'])
    for (const line of body.slice(3)) expect(line).toMatch(/^ {4}(section [^`:;#%{}\n]+|[^`:;#%{}\n]+ :(done, |crit, )?\d+, \d+)$/)
    expect(body.filter((l) => l.startsWith('    section '))).toHaveLength(HOSTILE.length)
  })

  test('a section per host with a bar per step; a failed step is crit, a step not run is not drawn', () => {
    const t = new Timeline()
    const [a, b] = [hostNamed('web1'), hostNamed('web2', 1)]
    t.batchStarted(1, 1, [a, b])
    t.stepRan(a, 0, 1000, 2000)
    t.stepRan(a, 1, 2000, 2500)
    t.stepRan(b, 0, 1000, 1800)
    const results = [
      hostOf('web1', 'success', { steps: [stepOf('deploy'), stepOf('restart')] }),
      hostOf('web2', 'failed', { steps: [stepOf('deploy', { status: 'failed' })] })
    ]
    expect(t.gantt(results, steps).lines.slice(4, -1)).toEqual([
      '    section web1',
      '    deploy :done, 1000, 2000',
      '    restart :done, 2000, 2500',
      '    section web2',
      '    deploy :crit, 1000, 1800'
    ])
  })

  test(`past ${TIMELINE_HOST_SECTIONS} hosts: a section per batch and a bar per host; past ${TIMELINE_BARS} bars the rest are counted`, () => {
    const t = new Timeline()
    const hosts = Array.from({ length: TIMELINE_BARS + 50 }, (_, i) => hostNamed(`h${i}`, i))
    t.batchStarted(1, 2, hosts.slice(0, 10))
    t.batchStarted(2, 2, hosts.slice(10))
    hosts.forEach((h, i) => {
      t.stepRan(h, 0, i * 10, i * 10 + 5)
      t.stepRan(h, 1, i * 10 + 5, i * 10 + 9)
    })
    const { lines, left } = t.gantt(
      hosts.map((h) => hostOf(h.name)),
      steps
    )
    expect(left).toBe(50)
    expect(lines.filter((l) => l.includes('section'))).toEqual(['    section batch 1', '    section batch 2'])
    expect(lines).toContain('    h3 :done, 30, 39')
    expect(lines.filter((l) => / :/.test(l))).toHaveLength(TIMELINE_BARS)
  })

  test('the summary draws it under its own heading, within the size budget', () => {
    const t = new Timeline()
    const h = hostNamed('web1')
    t.batchStarted(1, 1, [h])
    t.stepRan(h, 0, 1000, 2000)
    const md = summaryMarkdown({
      results: [hostOf('web1', 'success', { steps: [stepOf('deploy')] })],
      elapsedMs: 1,
      steps: ['deploy'],
      timeline: t
    })
    expect(md).toContain('### Timeline\n\n```mermaid\ngantt\n')
  })
})

describe('rollout log', () => {
  const halt: Halt = { host: 'web4', batch: 2, batches: 5, maxFailures: 0 }

  test('batch lines name a few hosts, or the first…the last', () => {
    expect(hostSpan(['a'])).toBe('a')
    expect(hostSpan(['a', 'b', 'c'])).toBe('a, b, c')
    expect(hostSpan(['web3', 'web4', 'web5', 'web6'])).toBe('web3…web6')
    const lines: string[] = []
    let now = 0
    const log = new RolloutLog(
      20,
      (l) => lines.push(l),
      () => now
    )
    log.batchStarted(
      2,
      5,
      ['web3', 'web4', 'web5', 'web6'].map((n) => hostNamed(n))
    )
    now = 12_300
    log.batchFinished(2, 5, [hostOf('web3'), hostOf('web4', 'failed'), hostOf('web5'), hostOf('web6', 'unreachable')])
    expect(lines).toEqual(['batch 2/5: 4 hosts (web3…web6)', 'batch 2/5 done in 12.3s: 2 succeeded, 1 failed, 1 unreachable'])
  })

  test(`a progress line as a host finishes, at most every ${PROGRESS_EVERY_MS / 1000}s, none for the last host`, () => {
    const lines: string[] = []
    let now = 0
    const log = new RolloutLog(
      40,
      (l) => lines.push(l),
      () => now
    )
    for (let i = 0; i < 15; i++) log.hostStarted()
    for (let i = 0; i < 12; i++) {
      now += 1000
      log.hostFinished(hostOf(`h${i}`, i === 3 ? 'failed' : 'success'))
    }
    expect(lines).toEqual(['[5/40 hosts done, 1 failed, 10 running]', '[10/40 hosts done, 1 failed, 5 running]'])
    const one = new RolloutLog(
      1,
      (l) => lines.push(l),
      () => now
    )
    now += PROGRESS_EVERY_MS * 2
    one.hostFinished(hostOf('x'))
    expect(lines).toHaveLength(2)
  })

  test('the halt: at once, and at the end of its batch with the hosts it stopped and left unstarted', () => {
    const lines: string[] = []
    const log = new RolloutLog(
      20,
      (l) => lines.push(l),
      () => 0
    )
    log.batchStarted(1, 5, [hostNamed('web1')])
    log.batchStarted(
      2,
      5,
      ['web2', 'web3', 'web4', 'web5'].map((n) => hostNamed(n))
    )
    log.halted(halt)
    log.batchFinished(2, 5, [
      hostOf('web2', 'skipped', { skipCode: 'stopped' }),
      hostOf('web3', 'skipped', { skipCode: 'not-started' }),
      hostOf('web4', 'failed'),
      hostOf('web5')
    ])
    expect(lines.slice(2)).toEqual([
      'the rollout stopped in batch 2/5 when web4 failed: more than 0 hosts failed (max-failures); hosts in flight stop before their next step, no other host starts',
      'batch 2/5 done in 0.0s: 1 succeeded, 1 failed, 2 skipped',
      'the rollout stopped in batch 2/5 when web4 failed: more than 0 hosts failed (max-failures): 1 host stopped mid-plan, 16 not started'
    ])
    expect(log.halt).toBe(halt)
  })

  test('the halt in the failure line and the summary; stopped and not-started hosts read apart, by their code', () => {
    const results: HostResult[] = [
      hostOf('web1', 'success', { steps: [stepOf('a'), stepOf('b')] }),
      hostOf('web4', 'failed', { steps: [stepOf('a', { status: 'failed', exitCode: 2 })], failedStep: 'a', error: 'exit code 2' }),
      // The words say otherwise on purpose: the code decides.
      hostOf('web5', 'skipped', { skipCode: 'stopped', error: 'not started', steps: [stepOf('a')] }),
      hostOf('web6', 'skipped', { skipCode: 'not-started', error: 'stopped after step 9', durationMs: 0 })
    ]
    expect(failureMessage(results, halt)).toBe(
      '1 of 4 hosts failed: web4; the rollout stopped in batch 2/5 when web4 failed: more than 0 hosts failed (max-failures): 1 stopped mid-plan, 1 not started'
    )
    const md = summaryMarkdown({ results, elapsedMs: 1000, steps: ['a', 'b'], halt })
    expect(md).toContain('**the rollout stopped in batch 2/5 when web4 failed\\: more than 0 hosts failed (max-failures)**')
    expect(md).toContain('| web5 | ⏸️ stopped after step 1 of 2 | ✅ 0.0s |  |')
    expect(md).toContain('| web6 | ⏭️ not started |  |  |')
    expect(md).toContain('| web4 | ❌ failed | ❌ 0.0s exit 2 |  |')
    expect(md).toContain('- stopped mid-plan (1): web5\n- not started (1): web6')
  })
})

describe('summary head and links', () => {
  test("the title is the step's id when it has an id's shape", () => {
    expect(stepTitle({ GITHUB_ACTION: 'deploy-web' })).toBe('deploy-web')
    expect(stepTitle({ GITHUB_ACTION: '__run_2' })).toBe('__run_2')
    expect(stepTitle({ GITHUB_ACTION: 'x\n## owned' })).toBeUndefined()
    expect(stepTitle({})).toBeUndefined()
    expect(summaryMarkdown({ results: [hostOf('a')], elapsedMs: 1, steps: ['s'], title: 'deploy-web' })).toMatch(
      /^## ssh-fleet: deploy-web\n/
    )
  })

  test("the run's link: built from the runner's variables, left out when any has another shape", () => {
    const env = { GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/site.www', GITHUB_RUN_ID: '123456' }
    expect(runLink(env)).toBe('https://github.com/acme/site.www/actions/runs/123456')
    expect(runLink({ ...env, GITHUB_RUN_ATTEMPT: '2' })).toBe('https://github.com/acme/site.www/actions/runs/123456/attempts/2')
    for (const bad of [
      { GITHUB_SERVER_URL: 'javascript:alert(1)//' },
      { GITHUB_SERVER_URL: 'https://evil.example/x)](y' },
      { GITHUB_REPOSITORY: 'acme/site)[x](https://evil.example' },
      { GITHUB_REPOSITORY: 'acme' },
      { GITHUB_RUN_ID: '12a' },
      { GITHUB_RUN_ATTEMPT: '1 ' },
      { GITHUB_RUN_ID: '' }
    ])
      expect(runLink({ ...env, ...bad })).toBeUndefined()
    expect(RUN_LINK.test(runLink({ ...env, GITHUB_RUN_ATTEMPT: '3' }) as string)).toBe(true)
    const md = summaryMarkdown({ results: [hostOf('a')], elapsedMs: 1, steps: ['s'], runUrl: runLink(env) })
    expect(md).toContain('1/1 hosts succeeded in 0.0s · [run log](https://github.com/acme/site.www/actions/runs/123456)')
    expect(shardLinks([{ shard: '1/2', runUrl: 'https://github.com/a/b/actions/runs/1' }, { shard: '2/2' }])).toEqual([
      '',
      'Logs: [shard 1/2](https://github.com/a/b/actions/runs/1)'
    ])
    expect(shardLinks([{ shard: null }])).toEqual([])
  })
})

describe('sizes', () => {
  test.each([
    [0, '0 B'],
    [999, '999 B'],
    [999.6, '1.0 KB'],
    [1000, '1.0 KB'],
    [40_000, '40.0 KB'],
    [999_960, '1.0 MB'],
    [2_500_000, '2.5 MB'],
    [3.2e9, '3.2 GB'],
    [5e15, '5000.0 TB']
  ])('%d bytes: %s', (bytes, text) => expect(size(bytes)).toBe(text))

  test('an upload of a few KB is never 0.0 MB in the summary', () => {
    const step = stepOf('upload', { transfer: { files: 2, bytes: 4_300, unchanged: 0, deleted: 0, bytesPerSecond: 1, transport: 'sftp' } })
    expect(summaryMarkdown({ results: [hostOf('a', 'success', { steps: [step] })], elapsedMs: 1, steps: ['upload'] })).toContain(
      '2 files, 4.3 KB'
    )
  })
})

describe('skip codes in results', () => {
  test('the code goes out and comes back; a file of an earlier version (no code) reads as plainly skipped; an unknown code is refused', () => {
    const r = hostOf('a', 'skipped', { skipCode: 'stopped', error: 'stopped after step 1 of 2' })
    expect(hostFromJson(JSON.parse(JSON.stringify(hostJson(r, true)))).skipCode).toBe('stopped')
    const old = { ...hostJson(hostOf('b', 'skipped'), true) } as Record<string, unknown>
    delete old.skipCode
    expect(hostFromJson(old).skipCode).toBeUndefined()
    expect(() => hostFromJson({ ...old, skipCode: 'gone' })).toThrow("b: unknown skipCode 'gone'")
  })
})
