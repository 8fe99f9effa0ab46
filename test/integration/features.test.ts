/**
 * What deployers ask for most, against a real sshd: captured output, script files, on-failure and
 * always steps, a step's own concurrency, upload excludes, sudo with a password, agent forwarding,
 * legacy algorithms, and the replay of a failed host's output.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { hostResult, runAction } from '../helpers/action'
import { useSshd, useWorkspace } from '../helpers/fixtures'
import { ensureTestUser, hostList, hostName, isRoot, keygen, peakOverlap, startSshd, type Sshd } from '../helpers/sshd'

let sshd: Sshd
const workspace = useWorkspace('features')
const PORT = '${SSH_CONNECTION##* }'
useSshd({ ports: 6 }, (started) => (sshd = started))
const name = (port: number): string => hostName(sshd, port)
const base = (ports = sshd.ports): Record<string, string> => ({
  hosts: hostList(sshd, ports),
  'private-key': sshd.clientKey,
  'known-hosts': sshd.knownHosts
})
const env = { env: { GITHUB_WORKSPACE: workspace } }

describe('capture, run-file, on-failure and always', () => {
  test('captured stdout in results and the captured output, for failed steps too', async () => {
    const [a, b] = sshd.ports
    const steps = `
- name: Version
  run: 'echo "v1.2.3"; echo "on ${PORT}"; echo; echo noise >&2; [ ${PORT} != ${b} ]'
  capture: true
- name: After
  local: echo local-out
  capture: true
`
    const run = await runAction({ ...base([a, b]), steps }, env)
    const captured = JSON.parse(run.outputs.captured)
    // Keyed by the hosts entries as written; trailing line ends dropped, as $(…) drops them.
    expect(captured[name(a)]).toEqual({ Version: `v1.2.3\non ${a}`, After: 'local-out' })
    expect(captured[name(b)]).toEqual({ Version: `v1.2.3\non ${b}` }) // failed: captured all the same
    expect(hostResult(run, name(b)).steps[0]).toMatchObject({ status: 'failed', stdout: `v1.2.3\non ${b}`, error: 'exit code 1' })
  })

  test('run-file, as an input and as a step field; a missing file is an input error before any connection', async () => {
    mkdirSync(join(workspace, 'scripts'), { recursive: true })
    writeFileSync(join(workspace, 'scripts/deploy.sh'), 'echo "from a file: $0 $1"\necho \'$NOT_EXPANDED\'\n')
    const input = await runAction({ ...base([sshd.ports[0]]), 'run-file': 'scripts/deploy.sh' }, env)
    expect(input.results[0].steps[0].stdoutTail).toBe('from a file: /dev/fd/3 \n$NOT_EXPANDED')
    const field = await runAction({ ...base([sshd.ports[0]]), steps: '- run-file: scripts/deploy.sh\n  name: From file' }, env)
    expect(field.results[0].steps[0]).toMatchObject({ name: 'From file', status: 'success' })
    const logins = (sshd.log().match(/Accepted publickey/g) ?? []).length
    const missing = await runAction({ ...base([sshd.ports[0]]), 'run-file': 'scripts/nope.sh' }, env)
    expect(missing.code).toBe(1)
    expect(missing.stdout).toMatch(
      /::error::Invalid input 'run-file': 'scripts\/nope.sh' cannot be read \(.*ENOENT\)\. Nothing was run on any host\./
    )
    expect((sshd.log().match(/Accepted publickey/g) ?? []).length).toBe(logins)
  })

  test('on-failure runs only where the plan failed, with FLEET_FAILED_STEP and FLEET_ERROR; always runs everywhere', async () => {
    const [a, b, c] = sshd.ports
    const run = await runAction(
      {
        ...base([a, b, c]),
        steps: `- name: Deploy\n  run: '[ ${PORT} != ${b} ] || { echo broken >&2; exit 7; }'`,
        'on-failure': `- name: Rollback\n  run: 'echo "rollback after $FLEET_FAILED_STEP: $FLEET_ERROR"'\n- local: 'echo "local rollback of $FLEET_HOST:$FLEET_PORT ($FLEET_ERROR)"'`,
        always: `- name: Re-add\n  run: echo re-added\n- name: Check\n  run: '[ ${PORT} != ${c} ]'`
      },
      env
    )
    const ra = hostResult(run, name(a))
    const rb = hostResult(run, name(b))
    const rc = hostResult(run, name(c))
    expect(ra.steps.map((s: { name: string; phase?: string }) => [s.name, s.phase ?? 'plan'])).toEqual([
      ['Deploy', 'plan'],
      ['Re-add', 'always'],
      ['Check', 'always']
    ])
    expect(ra.status).toBe('success')
    expect(rb.status).toBe('failed') // never turned into a success
    expect(rb.error).toBe('exit code 7')
    expect(rb.steps.map((s: { name: string; phase?: string }) => [s.name, s.phase ?? 'plan'])).toEqual([
      ['Deploy', 'plan'],
      ['Rollback', 'on-failure'],
      ['local 2', 'on-failure'],
      ['Re-add', 'always'],
      ['Check', 'always']
    ])
    expect(rb.steps[1].stdoutTail).toBe('rollback after Deploy: exit code 7')
    expect(rb.steps[2].stdoutTail).toBe(`local rollback of 127.0.0.1:${b} (exit code 7)`)
    // A failure in always on a host that had succeeded fails it.
    expect(rc).toMatchObject({ status: 'failed', error: 'exit code 1' })
    expect(run.annotations.find((l) => l.startsWith('::error title=') && l.includes(`${c}%3A always%3A Check`))).toBeDefined()
  })
})

describe('throttles and uploads', () => {
  test('a step with concurrency 2 runs on at most 2 hosts at once, measured on the host', async () => {
    const file = join(sshd.shared, `concurrency-${Date.now()}`)
    writeFileSync(file, '')
    execFileSync('chmod', ['666', file])
    const run = await runAction({
      ...base(),
      concurrency: '6',
      steps: `- name: Warm\n  run: 'echo "+ $(date +%s%N)" >> ${file}; sleep 0.4; echo "- $(date +%s%N)" >> ${file}'\n  concurrency: 2`
    })
    expect(run.code).toBe(0)
    expect(peakOverlap(file)).toEqual({ peak: 2, events: 12 })
  })

  test('exclude leaves files out of the upload, and delete leaves excluded paths on the host alone', async () => {
    const src = join(workspace, 'site')
    mkdirSync(join(src, 'cache'), { recursive: true })
    writeFileSync(join(src, 'index.html'), 'index')
    writeFileSync(join(src, 'secret.env'), 'no')
    writeFileSync(join(src, 'cache/a.tmp'), 'tmp')
    const root = join(sshd.shared, `site-${Date.now()}`)
    const host = [sshd.ports[0]]
    const seed = await runAction({
      ...base(host),
      run: `mkdir -p ${root}/logs ${root}/old && echo keep > ${root}/logs/app.log && echo stale > ${root}/old/x && echo stale > ${root}/stale.txt`
    })
    expect(seed.code).toBe(0)
    const run = await runAction(
      { ...base(host), steps: `- upload: { from: site, to: ${root}, delete: true, exclude: ["*.env", cache, "logs/**"] }` },
      env
    )
    expect(run.code, run.stdout).toBe(0)
    const listing = execFileSync('find', [root, '-mindepth', '1'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((p) => p.slice(root.length + 1))
      .sort()
    expect(listing).toEqual(['index.html', 'logs', 'logs/app.log'])
    expect(run.stdout).toContain('removed 2 files and 1 directories not in site')
  })
})

describe.runIf(isRoot)('sudo (needs root to make a test user with a sudo password)', () => {
  const PASSWORD = 'Sudo-Pass 42!'
  let user = ''
  beforeAll(() => {
    user = ensureTestUser()
    execFileSync('chpasswd', { input: `${user}:${PASSWORD}\n` })
    writeFileSync('/etc/sudoers.d/ssh-fleet-test', `${user} ALL=(ALL) ALL\nDefaults:${user} !lecture, timestamp_timeout=0\n`, {
      mode: 0o440
    })
  })
  afterAll(() => rmSync('/etc/sudoers.d/ssh-fleet-test', { force: true }))

  test('sudo: true with sudo-password: root, and the password in no command line, environment, file or log line', async () => {
    const spy = join(sshd.shared, `sudo-spy-${Date.now()}`)
    const script = `id -u; ps -eo args > ${spy}.ps; env > ${spy}.env; cat /proc/$$/environ | tr '\\0' '\\n' >> ${spy}.env; ls -a \${TMPDIR:-/tmp} > ${spy}.tmp; cat </dev/stdin | wc -c`
    const run = await runAction({
      ...base([sshd.ports[0]]),
      'sudo-password': PASSWORD,
      steps: `- name: As root\n  run: '${script.replace(/'/g, "''")}'\n  sudo: true`
    })
    expect(run.code, run.stdout).toBe(0)
    expect(run.results[0].steps[0].stdoutTail).toBe('0\n0') // root, and an empty stdin
    for (const ext of ['ps', 'env', 'tmp']) expect(readFileSync(`${spy}.${ext}`, 'utf8')).not.toContain(PASSWORD)
    expect(readFileSync(`${spy}.tmp`, 'utf8')).not.toMatch(/ssh-fleet\./) // the staged script is gone already
    const printed = [
      run.stdout
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'))
        .join('\n'),
      run.stderr,
      run.summary,
      JSON.stringify(run.outputs)
    ].join('\n')
    expect(printed).not.toContain(PASSWORD)
    expect(run.stdout).toContain(`::add-mask::${PASSWORD}`)
  })

  test("sudo: true without sudo-password fails at once with sudo's message, and leaves no file", async () => {
    const run = await runAction({ ...base([sshd.ports[0]]), steps: '- run: id -u\n  sudo: true' })
    expect(run.results[0]).toMatchObject({ status: 'failed' })
    expect(run.results[0].steps[0].stderrTail).toMatch(/sudo: (a password is required|a terminal is required)/)
    expect(run.results[0].steps[0].durationMs).toBeLessThan(3000)
    const left = readdirSync('/tmp').filter((f) => f.startsWith('ssh-fleet.'))
    expect(left).toEqual([])
  })
})

describe('agent forwarding and legacy algorithms', () => {
  test("forward-agent: the host sees the runner's agent (ssh-add -l lists its key)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-fwd-'))
    const sock = join(dir, 'agent.sock')
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' })
    try {
      for (let i = 0; i < 50 && !readdirSync(dir).includes('agent.sock'); i++) await new Promise((r) => setTimeout(r, 20))
      const key = join(dir, 'forwarded')
      keygen(key)
      execFileSync('ssh-add', [key], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' })
      const fp = execFileSync('ssh-keygen', ['-lf', `${key}.pub`], { encoding: 'utf8' }).split(' ')[1]
      const run = await runAction(
        { ...base([sshd.ports[0]]), 'forward-agent': 'true', run: 'ssh-add -l' },
        { env: { SSH_AUTH_SOCK: sock } }
      )
      expect(run.results[0].status, run.stdout).toBe('success')
      expect(run.results[0].steps[0].stdoutTail).toContain(fp)
      const without = await runAction({ ...base([sshd.ports[0]]), 'forward-agent': 'true', run: 'true' })
      expect(without.stdout).toContain("::error::Invalid input 'forward-agent': true, but there is no agent to forward")
    } finally {
      agent.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('legacy-algorithms: an sshd offering only SHA-1 and CBC is refused without it, reached with it, with a warning', async () => {
    let rsaLine = ''
    const old = await startSshd({
      config: ['KexAlgorithms diffie-hellman-group14-sha1', 'HostKeyAlgorithms ssh-rsa', 'Ciphers aes128-cbc', 'MACs hmac-sha1'],
      prepare: (dir) => {
        keygen(join(dir, 'host_rsa'), 'rsa')
        const config = readFileSync(join(dir, 'sshd_config.0'), 'utf8').replace(/^HostKey .*$/m, `HostKey ${join(dir, 'host_rsa')}`)
        writeFileSync(join(dir, 'sshd_config.0'), config)
        rsaLine = readFileSync(join(dir, 'host_rsa.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
      }
    })
    try {
      const inputs = {
        hosts: hostList(old),
        'private-key': old.clientKey,
        'known-hosts': `[127.0.0.1]:${old.ports[0]} ${rsaLine}`,
        run: 'echo old',
        'connect-retries': '0'
      }
      const refused = await runAction(inputs)
      expect(refused.results[0].status).not.toBe('success')
      expect(refused.results[0].error).toMatch(/^SSH handshake failed: .*; an old server may need legacy-algorithms: true$/)
      const reached = await runAction({ ...inputs, 'legacy-algorithms': 'true' })
      expect(reached.results[0].status, reached.stdout).toBe('success')
      const warning = reached.annotations.find((a) => a.startsWith('::warning'))
      expect(warning).toContain(
        'connected with legacy algorithms (legacy-algorithms: true): diffie-hellman-group14-sha1, ssh-rsa, aes128-cbc, hmac-sha1'
      )
    } finally {
      await old.stop()
    }
  })
})

describe('the log after a run with several hosts in flight', () => {
  test("a failed host's output of its failing step is printed again, whole, in a group of its own", async () => {
    const [a, b] = sshd.ports
    const run = await runAction({
      ...base([a, b]),
      run: `for i in 1 2 3; do echo "line $i of ${PORT}"; sleep 0.05; done; [ ${PORT} != ${b} ] || { echo "why it failed" >&2; exit 2; }`
    })
    const lines = run.stdout.split('\n')
    const start = lines.findIndex((l) => l === `::group::${name(b)} › run: output of the failed step`)
    expect(start).toBeGreaterThan(0)
    const end = lines.indexOf('::endgroup::', start)
    const inside = lines.slice(start + 1, end).filter((l) => !/^::/.test(l))
    expect(inside).toEqual([`line 1 of ${b}`, `line 2 of ${b}`, `line 3 of ${b}`, 'stderr| why it failed'])
    expect(lines.some((l) => l.includes(`${name(a)} › run: output of the failed step`))).toBe(false)
  })
})

test('dry-run prints the new parts of the plan, and bad values are input errors before any connection', async () => {
  writeFileSync(join(workspace, 'dry.sh'), 'echo dry\n')
  const run = await runAction(
    {
      ...base([sshd.ports[0]]),
      'dry-run': 'true',
      'sudo-password': 'not-shown',
      steps:
        '- run-file: dry.sh\n  capture: true\n  sudo: true\n  concurrency: 2\n- upload: { from: dry.sh, to: /tmp/x/, exclude: "*.tmp" }',
      'on-failure': '- run: echo rollback',
      always: '- local: echo always'
    },
    env
  )
  expect(run.code).toBe(0)
  expect(run.stdout).toContain('step 1: step 1 (concurrency 2, capture, sudo with sudo-password): run-file dry.sh')
  expect(run.stdout).toContain('step 2: upload 2 (exclude *.tmp): upload 1 files')
  expect(run.stdout).toContain('on-failure 1: step 1: echo rollback')
  expect(run.stdout).toContain('always 1: local 1: on the runner: echo always')
  for (const [input, value, message] of [
    ['steps', '- run: x\n  concurrency: 0', "field 'concurrency': '0' is not a whole number of at least 1"],
    ['steps', '- run: x\n  sudo: maybe', "field 'sudo': must be true or false"],
    ['steps', '- upload: { from: dry.sh, to: /tmp/, exclude: "../x" }', "'../x' is not a glob relative to from"],
    ['capture', 'yes', "'yes' is not one of true, false"],
    ['legacy-algorithms', 'sure', "'sure' is not one of true, false"],
    ['on-failure', '- nope: 1', "step 1: nope: are no step's keys; a step has one of run:"],
    [
      'steps',
      '- name: Up\n  run: echo a: b',
      "step 1 ('Up'), field 'run': not valid YAML at line 2, column 8: Nested mappings are not allowed in compact mappings (a value with ': ' in it needs quotes"
    ],
    ['pty', 'maybe', "'maybe' is not one of true, false"],
    ['steps', '- local: x\n  pty: true', "step 1: unknown key 'pty'"]
  ] as const) {
    const bad = await runAction(
      { ...base([sshd.ports[0]]), ...(input === 'steps' ? { steps: value } : { run: 'true', [input]: value }) },
      env
    )
    expect(bad.code, `${input}: ${value}`).toBe(1)
    expect(bad.stdout).toContain(`::error::Invalid input '${input}'`)
    expect(bad.stdout).toContain(message)
    expect(bad.results).toEqual([])
  }
})
