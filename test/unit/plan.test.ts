import { afterAll, describe, expect, test } from 'vitest'
import { parseCount, parseDuration } from '../../src/plan/inputs'
import { parseBatchSpec, parseMaxFailures, parseShard, parseSteps, planBatches, shardHosts } from '../../src/plan/plan'
import type { Host, RunStep } from '../../src/plan/settings'
import { resolveSources, resolveUpload } from '../../src/plan/local-files'
import { Workspace } from '../../src/base/workspace'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A small tree for uploads: app/bin/run, app/lib/a.js, app/lib/b.js, app/empty/, notes.txt. */
const fixtures = mkdtempSync(join(tmpdir(), 'ssh-fleet-plan-'))
afterAll(() => rmSync(fixtures, { recursive: true, force: true }))
const workspace = new Workspace(fixtures)
for (const dir of ['app/bin', 'app/lib', 'app/empty']) mkdirSync(join(fixtures, dir), { recursive: true })
for (const [file, text] of [
  ['app/bin/run', '#!/bin/sh\n'],
  ['app/lib/a.js', 'a'],
  ['app/lib/b.js', 'bb'],
  ['notes.txt', 'n']
])
  writeFileSync(join(fixtures, file), text)

const defaults = { env: { GLOBAL: 'g' }, capture: false, pty: false, timeoutMs: 0, retries: 0, retryDelayMs: 5000 }
const parsers = {
  duration: parseDuration,
  count: parseCount,
  upload: (from: string[], to: string, exclude: string[]) => resolveSources(from, to, workspace, exclude),
  file: (path: string) => readFileSync(join(fixtures, path), 'utf8')
}
const steps = (yaml: string) => parseSteps(yaml, defaults, parsers)
const hosts = (n: number): Host[] =>
  Array.from({ length: n }, (_, i) => ({ name: `h${i}`, user: 'u', hostname: `h${i}`, port: 22, index: i }))

describe('parseSteps', () => {
  test('reads every field, with defaults from the inputs', () => {
    const [pull, migrate, health] = steps(`
- name: Pull
  run: docker compose pull
  timeout: 10m
  retries: 2
  retry-delay: 1s
  env:
    TAG: v1
    N: 3
- name: Migrate
  run: ./migrate.sh
  run-once: true
- run: |
    curl -fsS localhost:8080/health
  continue-on-error: true
`)
    expect(pull).toMatchObject({
      kind: 'run',
      name: 'Pull',
      script: 'docker compose pull',
      timeoutMs: 600_000,
      retries: 2,
      retryDelayMs: 1000,
      env: { GLOBAL: 'g', TAG: 'v1', N: '3' },
      runOnce: false,
      continueOnError: false
    })
    expect(migrate).toMatchObject({ name: 'Migrate', runOnce: true, retries: 0, retryDelayMs: 5000 })
    expect(health).toMatchObject({ name: 'step 3', script: 'curl -fsS localhost:8080/health\n', continueOnError: true })
  })

  test('pty: a run step field, its default the pty input; only run steps take it', () => {
    expect(steps('- run: a\n  pty: true\n- run: b').map((s) => (s as RunStep).pty)).toEqual([true, false])
    expect((parseSteps('- run: a', { ...defaults, pty: true }, parsers)[0] as RunStep).pty).toBe(true)
    expect(() => steps('- local: a\n  pty: true')).toThrow("unknown key 'pty'")
  })

  test('reboot steps: true for the defaults, or a map of options', () => {
    const [plain, custom] = steps(
      '- reboot: true\n- name: Kernel\n  reboot:\n    command: systemctl reboot\n    timeout: 5m\n    boot-id-command: cat /tmp/id\n    test-command: systemctl is-system-running\n    pre-delay: 2s\n    post-delay: 10s\n  continue-on-error: true'
    )
    expect(plain).toMatchObject({
      kind: 'reboot',
      name: 'reboot 1',
      command: undefined,
      timeoutMs: 600_000,
      bootIdCommand: 'cat /proc/sys/kernel/random/boot_id',
      testCommand: 'true',
      preDelayMs: 0,
      postDelayMs: 0
    })
    expect(custom).toMatchObject({
      kind: 'reboot',
      name: 'Kernel',
      command: 'systemctl reboot',
      timeoutMs: 300_000,
      bootIdCommand: 'cat /tmp/id',
      testCommand: 'systemctl is-system-running',
      preDelayMs: 2000,
      postDelayMs: 10_000,
      continueOnError: true
    })
  })

  test('local steps: a command line with the retry options', () => {
    const [drain] = steps('- name: Drain\n  local: ./lb drain "$FLEET_HOST"\n  timeout: 30s\n  retries: 2')
    expect(drain).toMatchObject({
      kind: 'local',
      name: 'Drain',
      command: './lb drain "$FLEET_HOST"',
      timeoutMs: 30_000,
      retries: 2,
      env: { GLOBAL: 'g' }
    })
  })

  test('upload steps: sources resolved now, mode in octal, delete', () => {
    const [tree, one, glob] = steps(`
- upload:
    from: app
    to: /srv/app
    mode: 0640
    delete: true
- upload: { from: notes.txt, to: /etc/notes.txt, compare: checksum }
- upload: { from: "app/**/*.js", to: /srv/js/, compare: none }
`)
    expect(tree).toMatchObject({
      kind: 'upload',
      name: 'upload 1',
      from: 'app',
      to: '/srv/app',
      mode: 0o640,
      delete: true,
      compare: 'mtime'
    })
    expect([one, glob].map((s) => s.kind === 'upload' && s.compare)).toEqual(['checksum', 'none'])
    expect(tree.kind === 'upload' && tree.files.map((f) => f.relative)).toEqual(['bin/run', 'lib/a.js', 'lib/b.js'])
    expect(tree.kind === 'upload' && tree.dirs).toEqual(['bin', 'empty', 'lib'])
    expect(one.kind === 'upload' && one.files.map((f) => [f.relative, f.size])).toEqual([['', 1]])
    expect(glob.kind === 'upload' && glob.files.map((f) => f.relative)).toEqual(['lib/a.js', 'lib/b.js'])
  })

  test('upload: from takes a YAML list (as the peers take source: a,b); an empty list or entry is named', () => {
    const [list] = steps('- upload: { from: [app/lib, notes.txt], to: test }')
    expect(list).toMatchObject({ kind: 'upload', from: 'app/lib, notes.txt', to: 'test' })
    expect(list.kind === 'upload' && list.files.map((f) => f.relative)).toEqual(['a.js', 'b.js', 'notes.txt'])
    expect(() => steps('- upload: { from: [], to: test }')).toThrow("step 1, upload, field 'from': is an empty list")
    expect(() => steps('- upload: { from: [app, ""], to: test }')).toThrow("step 1, upload, field 'from': is empty")
  })

  test('upload: delete is refused where it would mirror over the root or a home directory', () => {
    const spellings = ['~/.', '/home/u/.', '/home//u', '/home/u/../u', '~//', '~/x/..', '~/..', '/home/u/..', '/srv/../root', './/', ' ~ ']
    for (const to of ['/', '//', '~', '~/', '.', './', '/root', '/home/deploy/', '/Users/me', '~deploy', ...spellings]) {
      expect(() => steps(`- upload: { from: app, to: "${to}", delete: true }`), to).toThrow(
        /delete: true would remove everything else in .* \(the root, a top-level directory, a home directory or \.ssh\)/
      )
    }
    expect(steps('- upload: { from: app, to: /srv/app, delete: true }')[0]).toMatchObject({ delete: true })
    for (const to of ['~/app', '/home/u/app', 'releases/current', '/srv/./app/', '~deploy/site'])
      expect(steps(`- upload: { from: app, to: "${to}", delete: true }`)[0], to).toMatchObject({ delete: true })
    expect(steps('- upload: { from: app, to: "~", delete: false }')[0]).toMatchObject({ delete: false })
  })

  test('upload: delete is refused over a .ssh directory or inside one, and over a top-level directory', () => {
    const ssh = ['~/.ssh', '~/.ssh/', '/home/u/.ssh/', '/root/.ssh', '.ssh', '~/x/../.ssh', '~/.ssh/keys', '/srv/app/.ssh']
    for (const to of [...ssh, '/etc', '/usr/', '/var', '/opt', '/srv', '/tmp', '/var/../etc'])
      expect(() => steps(`- upload: { from: app, to: "${to}", delete: true }`), to).toThrow(
        /delete: true would remove everything else in .* \(the root, a top-level directory, a home directory or \.ssh\)/
      )
    for (const to of ['~/.sshd', '~/ssh', '/srv/app', '/etc/app.d'])
      expect(steps(`- upload: { from: app, to: "${to}", delete: true }`)[0], to).toMatchObject({ delete: true })
  })

  test('upload: a symbolic link inside from is followed; one that leads outside is refused, named', () => {
    const tree = join(fixtures, 'linked')
    mkdirSync(join(tree, 'conf'), { recursive: true })
    writeFileSync(join(tree, 'conf/app.ini'), 'x=1')
    symlinkSync('conf/app.ini', join(tree, 'current.ini'))
    symlinkSync('..', join(tree, 'conf/up')) // a loop back to the root: its files come once
    expect(resolveUpload('linked', '/srv', workspace).files.map((f) => f.relative)).toEqual(['conf/app.ini', 'current.ini'])
    const secret = join(fixtures, 'runner-only.key')
    writeFileSync(secret, 'secret')
    symlinkSync(secret, join(tree, 'conf/key'))
    expect(() => steps('- upload: { from: linked, to: /srv }')).toThrow(
      `step 1, upload, field 'from': 'linked': conf/key is a symbolic link to ${secret}, outside linked: refused`
    )
    expect(() => resolveUpload('linked/**/*', '/srv', workspace)).toThrow(
      /conf\/key is a symbolic link to .*, outside linked\/\*\*\/\*: refused/
    )
  })

  test('upload: from resolves through the workspace; .., an absolute path outside and a link leading out are refused, named', () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'ssh-fleet-elsewhere-'))
    try {
      writeFileSync(join(elsewhere, 'secret'), 'secret')
      symlinkSync(elsewhere, join(fixtures, 'away'))
      symlinkSync(join(elsewhere, 'secret'), join(fixtures, 'away.key'))
      for (const [from, why] of [
        ['../', /'\.\.\/' is outside the workspace/],
        [elsewhere, /is outside the workspace/],
        ['away', /'away': away is a symbolic link to .*, outside the workspace: refused/],
        ['away.key', /'away\.key': away\.key is a symbolic link to .*, outside the workspace: refused/],
        ['away/*', /away is a symbolic link to .*, outside the workspace: refused/],
        ['app/../../*', /is outside the workspace/]
      ] as const)
        expect(() => steps(`- upload: { from: "${from}", to: /srv }`), from).toThrow(why)
    } finally {
      rmSync(elsewhere, { recursive: true, force: true })
      for (const link of ['away', 'away.key']) rmSync(join(fixtures, link))
    }
  })

  test('upload: files get 0644, or 0755 when executable on the runner, never the runner mode as is', () => {
    const dir = join(fixtures, 'modes')
    mkdirSync(dir, { recursive: true })
    for (const [name, mode] of [
      ['open', 0o666],
      ['script', 0o700],
      ['private', 0o600]
    ] as const) {
      writeFileSync(join(dir, name), name)
      chmodSync(join(dir, name), mode)
    }
    expect(resolveUpload('modes', '/srv', workspace).files.map((f) => [f.relative, f.mode.toString(8)])).toEqual([
      ['open', '644'],
      ['private', '644'],
      ['script', '755']
    ])
    expect(resolveUpload('modes/script', '~', workspace).files[0]).toMatchObject({ relative: 'script', mode: 0o755 })
  })

  test('timeout as a bare number is seconds', () => {
    expect(steps('- run: x\n  timeout: 90')[0].timeoutMs).toBe(90_000)
  })

  test.each([
    ['- run: x\n  timout: 5m', /step 1: unknown key 'timout'/],
    ['- name: A\n  run: x\n  retries: -1', /step 1 \('A'\), field 'retries': '-1' is not a whole number/],
    ['- name: A\n  run: x\n- name: B\n  run: y\n  timeout: soon', /step 2 \('B'\), field 'timeout': 'soon' is not a duration/],
    ['- name: A\n  run: x\n  continue-on-error: maybe', /field 'continue-on-error': must be true or false/],
    ['- name: A\n  run: x\n  env: [A, B]', /field 'env': must be a map/],
    ['- name: A\n  run: x\n  env:\n    1X: y', /'1X' is not a variable name/],
    ['- name: A', /step 1 \('A'\): has none of run:/],
    ['- name: A\n  run: ""', /field 'run': is empty/],
    ['- name: A\n  run: x\n- name: A\n  run: y', /step 2 \('A'\): the name 'A' is used by an earlier step/],
    ['name: A\nrun: x', /must be a YAML list/],
    ['- run: x\n - bad', /step 2: not valid YAML at line 2, column 2: All sequence items must start at the same column/],
    ['- just a string', /step 1 must be a map/],
    ['- reboot: true\n  run: x', /has both run: and reboot:/],
    ['- local: ""', /field 'local': is empty/],
    ['- local: x\n  run: y', /has both run: and local:/],
    ['- upload: { from: app }', /field 'upload': needs from: and to:/],
    ['- upload: { from: missing-dir, to: /x }', /step 1, upload, field 'from': 'missing-dir' does not exist/],
    ['- upload: { from: "*.nothing", to: /x }', /'\*\.nothing' matches no file/],
    ['- upload: { from: app, to: /x, mode: 999 }', /field 'mode': '999' is not an octal file mode/],
    ['- upload: { from: app, to: /x, chmod: 644 }', /unknown option 'chmod'/],
    ['- upload: { from: app, to: /x, compare: size }', /field 'compare': must be mtime, checksum or none, not "size"/],
    ['- upload: app', /field 'upload': must be a map of from, to, mode, delete/],
    ['- name: x', /has none of run:, run-file:, reboot:, local:, upload:/],
    ['- reboot: true\n  retries: 2', /unknown key 'retries' \(a reboot step takes/],
    ['- reboot:\n    timout: 5m', /field 'reboot': unknown option 'timout'/],
    ['- reboot:\n    timeout: soon', /step 1, reboot, field 'timeout': 'soon' is not a duration/],
    ['- reboot: yes', /field 'reboot': must be true or a map/],
    ['- name: A\n  run: x\n- name: [B]\n  run: y', /step 2, field 'name': name must be a single value, not \["B"\]/],
    [
      '- name: Build\n  script: make\n  shell: sh',
      /step 1 \('Build'\): script:, shell: are no step's keys; a step has one of run:, run-file:/
    ],
    ['- name: A\n  run: x\n  sudo: 1', /step 1 \('A'\), field 'sudo': must be true or false, not 1/]
  ])('%j is refused: %s', (yaml, message) => {
    expect(() => steps(yaml)).toThrow(message)
  })
})

describe('a steps YAML error names the step and the key it is in', () => {
  test.each([
    [
      '- name: Pull\n  run: docker pull\n- name: Migrate\n  run: echo a: b\n  timeout: 10m',
      "step 2 ('Migrate'), field 'run': not valid YAML at line 4, column 8: Nested mappings are not allowed in compact mappings (a value with ': ' in it needs quotes, or a block: run: |)"
    ],
    ['- name: A\n  run: x\n  run: y', "step 1 ('A'), field 'run': not valid YAML at line 3, column 3: Map keys must be unique"],
    ['- name: A\n  run: x\n  env:\n    A: 1\n     B: 2', "step 1 ('A'), field 'env': not valid YAML at line 4, column 8"],
    ['- name: A\n  run: x\n- name: B\n  run: "x" y', "step 2 ('B'), field 'run': not valid YAML at line 4, column 12: Unexpected scalar"],
    // An unclosed [ is noticed where the next key starts: that key and line are named, with the parser's reason.
    [
      '- name: A\n  timeout: [1\n  run: x',
      "step 1 ('A'), field 'run': not valid YAML at line 3, column 3: Flow sequence in block collection"
    ],
    ['[', 'not valid YAML at line 1, column 2']
  ])('%j', (yaml, message) => {
    expect(() => steps(yaml)).toThrow(message)
  })
})

describe('batches, max-failures, shards', () => {
  test('batch sizes: counts, percentages rounded up, the last repeating', () => {
    expect(planBatches(hosts(10), parseBatchSpec('1,25%,100%')).map((b) => b.length)).toEqual([1, 3, 6])
    expect(planBatches(hosts(10), parseBatchSpec('3')).map((b) => b.length)).toEqual([3, 3, 3, 1])
    expect(planBatches(hosts(10), parseBatchSpec('10%')).map((b) => b.length)).toEqual(Array(10).fill(1))
    expect(planBatches(hosts(3), undefined)).toHaveLength(1)
    expect(
      planBatches(hosts(10), parseBatchSpec('2,5'))
        .flat()
        .map((h) => h.name)
    ).toEqual(hosts(10).map((h) => h.name))
  })

  test.each([
    ['0', /at least 1/],
    ['0%', /out of range/],
    ['101%', /out of range/],
    ['a', /not a number/],
    ['1,,2', /not a number/]
  ])('batch %s is refused', (spec, message) => {
    expect(() => parseBatchSpec(spec)).toThrow(message)
  })

  test('max-failures as a count or a percentage of the hosts', () => {
    expect(parseMaxFailures('2', 10)).toBe(2)
    expect(parseMaxFailures('25%', 10)).toBe(2)
    expect(parseMaxFailures('0', 10)).toBe(0)
    expect(() => parseMaxFailures('-1', 10)).toThrow()
    expect(() => parseMaxFailures('150%', 10)).toThrow(/more than 100%/)
  })

  test('shards are disjoint, cover the fleet, and differ in size by at most one', () => {
    const all = hosts(23)
    const slices = [1, 2, 3, 4].map((k) => shardHosts(all, parseShard(`${k}/4`)))
    expect(
      slices
        .flat()
        .map((h) => h.name)
        .sort()
    ).toEqual(all.map((h) => h.name).sort())
    expect(new Set(slices.flat().map((h) => h.name)).size).toBe(23)
    expect(slices.map((s) => s.length)).toEqual([6, 6, 6, 5])
    // Stable: shard k takes every n-th host from the k-th, so hosts added at the end move no host already there.
    expect(shardHosts(all, parseShard('2/4')).map((h) => h.index)).toEqual([1, 5, 9, 13, 17, 21])
    expect(shardHosts(hosts(30), parseShard('2/4')).slice(0, 6)).toEqual(shardHosts(all, parseShard('2/4')))
  })

  test.each(['0/3', '4/3', '1/0', 'a/b', '1-3'])('shard %s is refused', (text) => {
    expect(() => parseShard(text)).toThrow()
  })
})
