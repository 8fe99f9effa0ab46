import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { describe, expect, test } from 'vitest'
import { Inputs, MergeInputs } from '../../src/plan/input-names'
import { ACTION, MERGE_ACTION, actionYml } from '../helpers/action'

describe('the input names are the inputs action.yml declares', () => {
  for (const [bundle, names] of [
    [ACTION, Object.values(Inputs)],
    [MERGE_ACTION, Object.values(MergeInputs)]
  ] as const) {
    test(actionYml(bundle).replace(/.*\/(merge\/)?/, '$1'), () => {
      const declared = Object.keys((parseYaml(readFileSync(actionYml(bundle), 'utf8')) as { inputs: Record<string, unknown> }).inputs)
      expect([...names].sort()).toEqual(declared.sort())
    })
  }
})
