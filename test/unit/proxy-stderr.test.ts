import { expect, test } from 'vitest'
import { registerSecret } from '../../src/base/secrets'
import { StderrLines } from '../../src/ssh/proxy-command'

test("a proxy command's stderr line cut at its limit leaves no start of a secret at the cut", () => {
  registerSecret('S3cretPassw0rd!')
  const logged: string[] = []
  const lines = new StderrLines((line) => logged.push(line))
  lines.push(Buffer.from(`${'x'.repeat(1020)}S3cretPassw0rd! and more\n`))
  lines.end()
  expect(logged).toHaveLength(1)
  expect(logged[0]).toMatch(/^x{1020}\*\*\* \[cut\]$/)
  expect(lines.last).not.toContain('S3cr')
})
