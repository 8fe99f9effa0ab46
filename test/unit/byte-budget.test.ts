import { expect, test } from 'vitest'
import { ByteBudget } from '../../src/steps/byte-budget'

test('takes are served first come first served, never past the total; a release lets the next through', async () => {
  const budget = new ByteBudget(10)
  const order: string[] = []
  const a = await budget.take(6)
  const b = budget.take(6).then((release) => (order.push('b'), release))
  // Smaller, but asked after b: waits its turn rather than overtaking it.
  const c = budget.take(2).then((release) => (order.push('c'), release))
  await new Promise((r) => setTimeout(r, 10))
  expect(order).toEqual([])
  a()
  a() // a second release of the same take gives nothing back
  const releaseB = await b
  const releaseC = await c
  expect(order).toEqual(['b', 'c'])
  // 6 + 2 taken: 3 more must wait.
  let d = false
  const dTaken = budget.take(3).then((release) => ((d = true), release))
  await new Promise((r) => setTimeout(r, 10))
  expect(d).toBe(false)
  releaseB()
  ;(await dTaken)()
  releaseC()
  await expect(budget.take(11)).rejects.toThrow(RangeError)
})
