/** The test harness runs the action as the runner does: every action.yml default is in INPUT_*. */
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { describe, expect, test } from 'vitest'
import { ACTION, MERGE_ACTION, actionYml, inputEnv, inputVariable } from '../helpers/action'

describe('runAction fills action.yml defaults as the runner does', () => {
  for (const bundle of [ACTION, MERGE_ACTION]) {
    const inputs = (parseYaml(readFileSync(actionYml(bundle), 'utf8')) as { inputs: Record<string, { default?: unknown }> }).inputs
    test(`${actionYml(bundle).replace(/.*\/(merge\/)?/, '$1')}: every default, under the runner's name, the test's inputs winning`, () => {
      const withDefaults = Object.entries(inputs).filter(([, i]) => i.default !== undefined)
      expect(withDefaults.length).toBeGreaterThan(0)
      const env = inputEnv({}, bundle)
      for (const [name, input] of withDefaults) expect(env[inputVariable(name)], name).toBe(String(input.default))
      // Nothing else: an input without a default stays unset, as on the runner.
      expect(Object.keys(env).sort()).toEqual(withDefaults.map(([name]) => inputVariable(name)).sort())
      const [first] = withDefaults[0]
      expect(inputEnv({ [first]: 'given' }, bundle)[inputVariable(first)]).toBe('given')
    })
  }

  test('names: upper-cased, spaces to _, hyphens kept', () => {
    expect(inputVariable('host-key-check')).toBe('INPUT_HOST-KEY-CHECK')
    expect(inputVariable('a b')).toBe('INPUT_A_B')
  })

  test('inputs whose empty value means "not set" have no action.yml default (ssh-config must be able to win)', () => {
    const main = (parseYaml(readFileSync(actionYml(ACTION), 'utf8')) as { inputs: Record<string, { default?: unknown }> }).inputs
    for (const name of ['port', 'connect-timeout', 'keepalive-interval', 'keepalive-count-max', 'username', 'max-failures'])
      expect(main[name].default, name).toBeUndefined()
  })
})
