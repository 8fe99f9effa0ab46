import { describe, expect, test } from 'vitest'
import { EventEmitter } from 'node:events'
import { FleetLog, LineSplitter, type LogSink } from '../../src/report/output'
import type { Host } from '../../src/plan/settings'

const host: Host = { name: 'web1', user: 'u', hostname: 'web1', port: 22, index: 0 }

describe('LineSplitter', () => {
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
    log.output(host, 'stdout', ['a', '::error::injected'])
    log.output(host, 'stderr', ['b'])
    log.hostFinished()
    expect(sink.text).toBe('[web1] a\n[web1] ::error::injected\n[web1] stderr| b\n')
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
