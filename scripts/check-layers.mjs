// The floors of src/, lowest first: a module may import from its own floor or one below, never above
// (types included). Run by `npm run lint`; prints each import that runs back up a floor.
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const FLOORS = [
  ['base', 'shared types and the one place for each guarantee: masker, bounded holders, confined files, matching'],
  ['plan', 'inputs read once into settings: inventory, plan, ssh config'],
  ['ssh', 'connections, authentication, host keys, routes'],
  ['report', 'what people see: the live log, annotations, outputs, summary, results files'],
  ['steps', 'each kind of step'],
  ['run', 'a host through its plan, the fleet through its batches'],
  ['.', 'entries: main and merge']
]
const floorOf = (file) => {
  const dir = relative('src', dirname(file)).split('/')[0] || '.'
  const i = FLOORS.findIndex(([name]) => name === dir)
  if (i < 0) throw new Error(`${file}: folder '${dir}' has no floor in scripts/check-layers.mjs`)
  return i
}
const files = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []
  )
const upward = []
for (const file of files('src')) {
  const text = readFileSync(file, 'utf8')
  for (const [, spec] of text.matchAll(/^(?:import|export)[^'"]*from '(\.[^']*)'/gm)) {
    const target = relative(process.cwd(), resolve(dirname(file), spec))
    if (!target.startsWith('src/')) continue
    const from = floorOf(file)
    const to = floorOf(`${target}.ts`)
    if (to > from) upward.push(`${file} (${FLOORS[from][0]}) imports ${spec} (${FLOORS[to][0]}), a floor above`)
  }
}
if (upward.length) {
  console.error(`imports that run back up a floor (${FLOORS.map(([n]) => n).join(' < ')}):\n  ${upward.join('\n  ')}`)
  process.exit(1)
}
console.log(`layers: every import stays on its floor or goes down (${FLOORS.map(([n]) => n).join(' < ')})`)
