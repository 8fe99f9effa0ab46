import { describe, expect, test } from 'vitest'
import { hookEnvValue } from '../../src/run/host-runner'

describe('hookEnvValue', () => {
  test('NUL and control characters become ?, newline and tab stay', () => {
    expect(hookEnvValue('a\0b\x1b[1m\x7f\tc\nd\re')).toBe('a?b?[1m?\tc\nd?e')
  })

  test('a long text is cut, and says so', () => {
    const value = hookEnvValue('x'.repeat(100_000))
    expect(value.length).toBeLessThan(8300)
    expect(value).toMatch(/^x{8192}… \(cut at 8192 characters\)$/)
  })
})
