import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import * as core from '@actions/core'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { Inputs, MergeInputs } from '../../src/plan/input-names'
import { getSettings } from '../../src/plan/inputs'
import { ACTION, MERGE_ACTION, actionYml, inputVariable } from '../helpers/action'

describe('the input names are the inputs action.yml declares', () => {
  for (const [bundle, names, file] of [
    [ACTION, Object.values(Inputs), 'action.yml'],
    [MERGE_ACTION, Object.values(MergeInputs), 'merge/action.yml']
  ] as const) {
    test(file, () => {
      const declared = Object.keys((parseYaml(readFileSync(actionYml(bundle), 'utf8')) as { inputs: Record<string, unknown> }).inputs)
      expect([...names].sort()).toEqual(declared.sort())
    })
  }
})

// The runner's getInput, watched: ESM exports cannot be spied on in place.
vi.mock('@actions/core', async (original) => {
  const core = await original<typeof import('@actions/core')>()
  return { ...core, getInput: vi.fn(core.getInput) }
})

describe('getSettings reads the inputs through the table', () => {
  afterEach(() => {
    vi.mocked(core.getInput).mockClear()
    vi.unstubAllEnvs()
  })

  test('every input once, by its name in the table (a bastion and an ssh config given, so the routes read theirs too)', () => {
    for (const [name, value] of Object.entries({
      hosts: 'u@h',
      password: 'x',
      run: 'true',
      'proxy-jump': 'j@b',
      'ssh-config': 'Host h\n  ConnectTimeout 5\n'
    }))
      vi.stubEnv(inputVariable(name), value)
    getSettings({})
    const read = vi.mocked(core.getInput).mock.calls.map(([name]) => name)
    expect(read.sort()).toEqual(Object.values(Inputs).sort())
  })
})
