import { describe, expect, test } from 'vitest'
import { EventEmitter } from 'node:events'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { CAPTURE_BYTES, Capture, FleetLog, LineSplitter, Replay, type LogSink } from '../../src/report/output'
import { SharedBudget } from '../../src/base/bounded'
import { registerSecret } from '../../src/base/secrets'
import type { Host } from '../../src/plan/settings'
import { injected, runnerCommands } from '../helpers/runner-commands'

const host: Host = { name: 'web1', user: 'u', hostname: 'web1', port: 22, index: 0 }

describe('LineSplitter', () => {
  test('the tail keeps the last lines within 20 lines and 8 KiB; a line too long for it is named, not cut', () => {
    const s = new LineSplitter(() => {})
    s.push(Buffer.from(Array.from({ length: 30 }, (_, i) => `${i} ${'y'.repeat(1000)}`).join('\n') + '\n'))
    s.push(Buffer.from(`${'z'.repeat(70_000)}\nlast\n`))
    s.end()
    const tail = s.tailText().split('\n')
    expect(s.tailText().length).toBeLessThanOrEqual(8192)
    expect(tail.slice(-2)).toEqual(['[a line of 70000 characters, not kept here; the log has it]', 'last'])
    expect(tail[0]).toMatch(/^\d+ y{1000}$/)
  })

  test('a line over 64 KiB is cut at white space, never inside a known secret', () => {
    const lines: string[] = []
    const s = new LineSplitter((l) => lines.push(...l))
    // A token of 3000 characters across the 64 KiB mark: the cut goes before it, at the space.
    const token = 't'.repeat(3000)
    // A line still open (no newline yet) is what gets cut: memory stays bounded while it streams.
    s.push(Buffer.from(`${'a'.repeat(64 * 1024 - 1000)} ${token} rest`))
    s.push(Buffer.from('\n'))
    expect(lines[0]).toBe(`${'a'.repeat(64 * 1024 - 1000)} `)
    expect(lines[1]).toBe(`${token} rest`)
    // No white space near the mark: the cut never splits a registered secret.
    const secret = 'S3cr3t'.repeat(10)
    registerSecret(secret)
    const cut: string[] = []
    const t = new LineSplitter((l) => cut.push(...l))
    t.push(Buffer.from(`${'b'.repeat(64 * 1024 - 30)}${secret}${'c'.repeat(100)}`))
    t.push(Buffer.from('\n'))
    expect(cut[0]).toBe('b'.repeat(64 * 1024 - 30))
    expect(cut[1]).toBe(`${secret}${'c'.repeat(100)}`)
  })

  test('joins lines split across chunks, including a UTF-8 character cut in two', () => {
    const lines: string[] = []
    const s = new LineSplitter((l) => lines.push(...l))
    const bytes = Buffer.from('héllo wörld\r\nsecond\nthird')
    s.push(bytes.subarray(0, 2)) // cuts 'é' in half
    s.push(bytes.subarray(2, 15))
    s.push(bytes.subarray(15))
    s.end()
    expect(lines).toEqual(['héllo wörld', 'second', 'third'])
  })

  test('keeps only a bounded tail and cuts endless lines', () => {
    const lines: string[] = []
    const s = new LineSplitter((l) => lines.push(...l))
    s.push(Buffer.from(Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join('')))
    s.push(Buffer.alloc(200 * 1024, 'x'))
    s.end()
    expect(s.tailText().split('\n')).toHaveLength(20)
    expect(lines.slice(100).every((l) => l.length <= 64 * 1024)).toBe(true)
    expect(lines.slice(100).join('').length).toBe(200 * 1024)
  })
})

// What is held, not garbage waiting to be collected (Node 24 collects later than Node 20): V8's own gc(),
// reached at run time as the usual --expose-gc trick does.
setFlagsFromString('--expose-gc')
const collect = runInNewContext('gc') as () => void

describe('a flood of short lines', () => {
  test('3,000,000 empty lines through LineSplitter, its tail and Replay: linear time, bounded memory', () => {
    const replay = new Replay()
    const s = new LineSplitter((lines) => replay.push('stdout', lines))
    const chunk = Buffer.alloc(32 * 1024, '\n') // what an SSH channel hands over at once
    collect()
    const heapBefore = process.memoryUsage().heapUsed
    const started = performance.now()
    for (let sent = 0; sent < 3_000_000; sent += chunk.length) s.push(chunk)
    s.push(Buffer.from('last\n'))
    s.end()
    const ms = performance.now() - started
    // A shift() per line over the 256 KiB of kept lines took minutes here; linear work is under a second.
    expect(ms).toBeLessThan(5000)
    collect()
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024)
    expect(s.tailText().split('\n').at(-1)).toBe('last')
    const lines = replay.take()
    expect(lines.at(-1)).toBe('last')
    expect(lines[0]).toMatch(/^\[\d+ earlier lines left out\]$/)
    expect(lines.length).toBeLessThanOrEqual(256 * 1024 + 1)
  })
})

describe('Capture', () => {
  test("each step within CAPTURE_BYTES, all of them within the run's budget; past either the rest is counted and named", () => {
    const budget = new SharedBudget(3 * 1024 * 1024)
    const steps = Array.from({ length: 4 }, () => new Capture(budget))
    for (const c of steps) for (let i = 0; i < 3; i++) c.push(Buffer.alloc(512 * 1024, 'a'))
    const [first, , third, fourth] = steps.map((c) => c.text())
    expect(first.startsWith('a'.repeat(CAPTURE_BYTES))).toBe(true)
    expect(first.slice(CAPTURE_BYTES)).toBe(
      `\n[ssh-fleet: ${512 * 1024} more bytes not captured: the step's capture reached ${CAPTURE_BYTES} bytes]`
    )
    expect(third.slice(CAPTURE_BYTES)).toMatch(/^\n\[ssh-fleet: \d+ more bytes not captured/)
    expect(fourth).toBe(`\n[ssh-fleet: ${3 * 512 * 1024} more bytes not captured: the run's captures reached 800000 bytes]`)
    expect(budget.remaining).toBe(0)
  })

  test('trailing line ends are dropped, all of them, as $(…) drops them; inner ones and a cut text are kept', () => {
    const text = (...chunks: string[]): string => {
      const c = new Capture(new SharedBudget(1024))
      chunks.forEach((t) => c.push(Buffer.from(t)))
      return c.text()
    }
    expect(text('1.2.3\n')).toBe('1.2.3')
    expect(text('a\n\nb\n', '\n\n')).toBe('a\n\nb')
    expect(text('1.2.3\r\n')).toBe('1.2.3')
    expect(text('  x \t')).toBe('  x \t')
    expect(text('\n\n')).toBe('')
    const cut = new Capture(new SharedBudget(3))
    cut.push(Buffer.from('ab\ncd'))
    expect(cut.text()).toBe("ab\n\n[ssh-fleet: 2 more bytes not captured: the run's captures reached 800000 bytes]")
  })

  test('a UTF-8 character cut at the limit is dropped, not mangled', () => {
    const c = new Capture(new SharedBudget(5))
    c.push(Buffer.from('abcdé'))
    expect(c.text()).toBe("abcd\n[ssh-fleet: 1 more bytes not captured: the run's captures reached 800000 bytes]")
  })
})

/** A sink that records text and reports backpressure while `full` is set. */
function capture(): LogSink & EventEmitter & { text: string; full: boolean } {
  const sink = Object.assign(new EventEmitter(), { text: '', full: false }) as EventEmitter & { text: string; full: boolean }
  return Object.assign(sink, {
    write(t: string) {
      sink.text += t
      return !sink.full
    }
  })
}

describe('FleetLog', () => {
  test('prefixes lines with the host and marks stderr when several hosts are in flight', () => {
    const sink = capture()
    const log = new FleetLog(false, sink)
    log.hostStarted(host, 'run')
    log.output(host, 'stdout', ['a', 'progress 50%\r::error::PWNED'])
    log.output(host, 'stderr', ['b ##[warning]PWNED'])
    log.status(host, 'server said: x\n::error::PWNED')
    log.hostFinished()
    log.close()
    const lines = sink.text.trim().split('\n')
    expect(lines.slice(1, -1)).toEqual([
      '[web1] a',
      '[web1] progress 50%',
      '[web1] ::error::PWNED',
      '[web1] stderr| b ##[warning]PWNED',
      '[web1] » server said: x',
      '[web1] » ::error::PWNED'
    ])
    // Fenced from the first untrusted byte to the end: the runner acts on none of it.
    expect(lines[0]).toMatch(/^::stop-commands::[0-9a-f]{32}$/)
    expect(lines.at(-1)).toBe(`::${lines[0].split('::')[2]}::`)
    expect(injected(sink.text, 'PWNED')).toEqual([])
  })

  test('a step name cannot end a group title early; notes (the plan) are fenced too', () => {
    const sink = capture()
    const log = new FleetLog(true, sink)
    log.note('step 1: deploy: echo "##[error]PWNED"')
    log.hostStarted(host, 'deploy\n::error::PWNED')
    log.output(host, 'stdout', ['::warning::PWNED'])
    log.hostFinished()
    log.close()
    // The only command that carries the marker is the group itself, with the name as its title.
    expect(injected(sink.text, 'PWNED')).toEqual(['::group::web1 › deploy ::error::PWNED'])
    expect(runnerCommands(sink.text).map((c) => c.name)).toEqual(['stop-commands', 'group', 'stop-commands', 'endgroup'])
    expect(sink.text).toContain('::group::web1 › deploy ::error::PWNED\n')
  })

  test('groups one host at a time and fences its output against workflow commands', () => {
    const sink = capture()
    const log = new FleetLog(true, sink)
    log.hostStarted(host, 'run')
    log.output(host, 'stdout', ['::set-output name=x::y'])
    log.hostFinished()
    const lines = sink.text.trim().split('\n')
    expect(lines[0]).toBe('::group::web1 › run')
    const token = /^::stop-commands::([0-9a-f]{32})$/.exec(lines[1])?.[1]
    expect(token).toBeDefined()
    expect(lines.slice(2)).toEqual(['::set-output name=x::y', `::${token}::`, '::endgroup::'])
  })

  test('reports backpressure and calls every waiter back once on drain', () => {
    const sink = capture()
    const log = new FleetLog(false, sink)
    expect(log.output(host, 'stdout', ['a'])).toBe(true)
    sink.full = true
    expect(log.output(host, 'stdout', ['b'])).toBe(false)
    const resumed: string[] = []
    log.whenDrained(() => resumed.push('one'))
    log.whenDrained(() => resumed.push('two'))
    expect(sink.listenerCount('drain')).toBe(1)
    expect(resumed).toEqual([])
    sink.full = false
    sink.emit('drain')
    expect(resumed).toEqual(['one', 'two'])
    sink.emit('drain')
    expect(resumed).toEqual(['one', 'two'])
  })
})
