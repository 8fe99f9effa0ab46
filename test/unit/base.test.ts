import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BoundedBytes, LastLines, SharedBudget, clipText } from '../../src/base/bounded'
import { MASK, mask, maskDeep, registerSecret } from '../../src/base/secrets'
import { wildcardMatch } from '../../src/base/wildcard'
import { Workspace, WorkspaceError, readRegularFile } from '../../src/base/workspace'

describe('bounded holders', () => {
  it('BoundedBytes keeps the first cap bytes and counts the rest', () => {
    const b = new BoundedBytes(10)
    for (let i = 0; i < 1000; i++) b.push(Buffer.from('abcdefgh'))
    expect(b.text()).toBe('abcdefghab')
    expect(b.dropped).toBe(8000 - 10)
  })

  it('BoundedBytes never ends its text inside a UTF-8 character', () => {
    const b = new BoundedBytes(4)
    b.push(Buffer.from('abc€'))
    expect(b.text()).toBe('abc')
  })

  it('LastLines takes a flood of a million short lines in linear time and keeps the last ones', () => {
    const last = new LastLines(Infinity, 1000)
    const started = process.hrtime.bigint()
    for (let i = 0; i < 1_000_000; i++) last.push([''])
    last.push(['end'])
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    expect(last.lines.at(-1)).toBe('end')
    expect(last.lines.length).toBe(996 + 1)
    expect(last.dropped).toBeGreaterThan(999_000)
    // The array-shift version took minutes for this; linear is well under a second even on a busy machine.
    expect(ms).toBeLessThan(5000)
  })

  it('clipText: NUL and control characters become ?, newline and tab stay; a long text is cut, and says so', () => {
    expect(clipText('a\0b\x1b[1m\x7f\tc\nd\re', 100)).toBe('a?b?[1m?\tc\nd?e')
    expect(clipText('x'.repeat(100_000), 8192)).toMatch(/^x{8192}… \(cut at 8192 of 100000 characters\)$/)
  })

  it('SharedBudget grants until spent', () => {
    const budget = new SharedBudget(10)
    expect(budget.take(6)).toBe(6)
    expect(budget.take(6)).toBe(4)
    expect(budget.take(1)).toBe(0)
  })
})

describe('wildcardMatch', () => {
  it('matches as OpenSSH does', () => {
    expect(wildcardMatch('*.example.com', 'web1.EXAMPLE.com')).toBe(true)
    expect(wildcardMatch('web?', 'web1')).toBe(true)
    expect(wildcardMatch('web?', 'web12')).toBe(false)
    expect(wildcardMatch('a*b*c', 'aXbYc')).toBe(true)
    expect(wildcardMatch('a*b*c', 'aXcYb')).toBe(false)
    expect(wildcardMatch('*', '')).toBe(true)
    expect(wildcardMatch('ab*ba', 'aba')).toBe(false)
  })

  it('a pathological pattern against a long name answers at once', () => {
    const pattern = `${'*a'.repeat(5000)}*b`
    const name = 'a'.repeat(20000)
    const started = Date.now()
    expect(wildcardMatch(pattern, name)).toBe(false)
    expect(Date.now() - started).toBeLessThan(2000)
  })
})

describe('mask', () => {
  it('replaces every secret, in strings and keys, and a secret cut at the end', () => {
    registerSecret('hunter2-the-password')
    expect(mask('say hunter2-the-password twice: hunter2-the-password')).toBe(`say ${MASK} twice: ${MASK}`)
    expect(mask('cut here hunter2-the', { cut: true })).toBe(`cut here ${MASK}`)
    const deep = maskDeep({ a: ['x hunter2-the-password'], 'hunter2-the-password': 1 })
    expect(JSON.stringify(deep)).toBe(`{"a":["x ${MASK}"],"hunter2-the-password":1}`)
  })

  it('masks the forms a host re-encodes a secret in: JSON-escaped, URL-encoded, base64 at any alignment', () => {
    const secret = 'Pa"ss\\w0rd%x'
    registerSecret(secret)
    const json = JSON.stringify({ db_password: secret })
    expect(mask(json)).toBe(`{"db_password":"${MASK}"}`)
    expect(mask(`url: ${encodeURIComponent(secret)}`)).toBe(`url: ${MASK}`)
    for (const prefix of ['', 'a', 'ab', 'abc']) expect(mask(Buffer.from(`${prefix}${secret}tail`).toString('base64'))).toContain(MASK)
  })

  it('finds a long secret (a key line) and its encoded forms at every offset of a text, whatever is around it', () => {
    const line = 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW'
    registerSecret(line)
    for (let at = 0; at < 70; at++) {
      const text = `${'x'.repeat(at)}${line}${'y'.repeat(at % 7)}`
      expect(mask(text), `at ${at}`).toBe(`${'x'.repeat(at)}${MASK}${'y'.repeat(at % 7)}`)
      expect(mask(Buffer.from(text).toString('base64')), `base64 at ${at}`).toContain(MASK)
    }
    const clean = 'a log line with nothing secret in it, long enough to be probed at a few places '.repeat(4)
    expect(mask(clean)).toBe(clean)
  })

  it('masks the same results once, and again after a secret is registered', () => {
    const results = [{ host: 'web1', error: 'late-secret-value-123 leaked' }]
    const before = maskDeep(results)
    expect(maskDeep(results)).toBe(before)
    registerSecret('late-secret-value-123')
    expect(maskDeep(results)).toEqual([{ host: 'web1', error: `${MASK} leaked` }])
  })

  it("leaves keys and the action's own words alone, so the shape readers decide on survives a short secret", () => {
    registerSecret('fail')
    const deep = maskDeep({ status: 'failed', steps: [{ status: 'failed', error: 'it will fail' }] })
    expect(deep).toEqual({ status: 'failed', steps: [{ status: 'failed', error: `it will ${MASK}` }] })
  })
})

describe('Workspace', () => {
  const base = mkdtempSync(join(tmpdir(), 'ssh-fleet-ws-'))
  afterAll(() => rmSync(base, { recursive: true, force: true }))
  const ws = join(base, 'ws')
  const outside = join(base, 'outside')
  mkdirSync(join(ws, 'sub'), { recursive: true })
  mkdirSync(outside)
  writeFileSync(join(ws, 'sub', 'ok.sh'), 'echo ok\n')
  writeFileSync(join(outside, 'secret'), 'TOKEN\n')
  symlinkSync(join(outside, 'secret'), join(ws, 'link-out'))
  symlinkSync(outside, join(ws, 'dir-out'))
  symlinkSync(join(ws, 'sub', 'ok.sh'), join(ws, 'link-in'))
  const w = new Workspace(ws)

  it('reads files inside, through links that stay inside', () => {
    expect(w.readText('sub/ok.sh', 100)).toBe('echo ok\n')
  })

  it('refuses a link leading out, naming the link', () => {
    expect(() => w.readText('link-out', 100)).toThrow(/link-out is a symbolic link to .*outside the workspace/)
    expect(() => w.readText('dir-out/secret', 100)).toThrow(/dir-out is a symbolic link/)
    expect(() => w.readText('../outside/secret', 100)).toThrow(WorkspaceError)
    expect(() => w.readText('/proc/self/environ', 100)).toThrow(/outside the workspace/)
  })

  it('refuses to open a last component that is a link (checked at open, not only before)', () => {
    expect(() => w.open('link-in')).toThrow(/became a symbolic link/)
  })

  it('refuses a file larger than the limit', () => {
    expect(() => w.readText('sub/ok.sh', 3)).toThrow(/more than the 3 bytes/)
  })

  it('writes by replacing a link, never through it', () => {
    symlinkSync(join(outside, 'victim'), join(ws, 'results.json'))
    w.writeText('results.json', '{}\n')
    expect(readFileSync(join(ws, 'results.json'), 'utf8')).toBe('{}\n')
    expect(() => readFileSync(join(outside, 'victim'))).toThrow()
    expect(() => w.writeText('dir-out/x.json', '{}')).toThrow(/dir-out is a symbolic link/)
    expect(() => w.writeText('sub', '{}')).toThrow(/is a directory/)
  })
})

describe('Workspace and special files', () => {
  const base = mkdtempSync(join(tmpdir(), 'ssh-fleet-ws-fifo-'))
  afterAll(() => rmSync(base, { recursive: true, force: true }))
  execFileSync('mkfifo', [join(base, 'pipe')])
  const w = new Workspace(base)

  it('refuses a FIFO at once instead of waiting for a writer (which would stop the event loop)', () => {
    const started = Date.now()
    expect(() => w.readText('pipe', 100)).toThrow(/is not a regular file/)
    expect(() => w.open('pipe')).toThrow(/is not a regular file/)
    expect(() => readRegularFile(join(base, 'pipe'), 100)).toThrow(/is not a regular file/)
    expect(Date.now() - started).toBeLessThan(1000)
  })
})
