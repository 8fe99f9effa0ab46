import { afterAll, afterEach, describe, expect, test, vi } from 'vitest'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InputError } from '../../src/plan/input-error'
import { getSettings, parseCount, parseDuration, parseEnv } from '../../src/plan/inputs'
import type { RunStep } from '../../src/plan/settings'
import { knownSecrets } from '../../src/base/secrets'

describe('value parsers', () => {
  test('durations take seconds or s/m/h', () => {
    expect(parseDuration('90')).toBe(90_000)
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('10m')).toBe(600_000)
    expect(parseDuration('1.5h')).toBe(5_400_000)
    expect(parseDuration('0')).toBe(0)
    expect(() => parseDuration('-5s')).toThrow(/'-5s' is negative/)
    expect(() => parseDuration('5d')).toThrow(/not a duration/)
    expect(() => parseDuration('')).toThrow(/not a duration/)
  })

  test('durations at the timer limit: 596h is the most, past it is an input error, never 1 ms', () => {
    expect(parseDuration('596h')).toBe(596 * 3_600_000)
    expect(parseDuration('2147483.647')).toBe(2 ** 31 - 1)
    expect(() => parseDuration('2147483.648')).toThrow(/longer than the longest wait a timer can hold \(596h, about 24 days\)/)
    expect(() => parseDuration('600h')).toThrow(/'600h' is longer than/)
  })

  test('counts are whole numbers from a minimum', () => {
    expect(parseCount('3', 0)).toBe(3)
    expect(() => parseCount('0', 1)).toThrow(/'0' is not a whole number of at least 1/)
    expect(() => parseCount('1.5', 0)).toThrow(/whole number/)
    expect(() => parseCount('-1', 0)).toThrow(/whole number/)
  })

  test('env lines keep the value exactly, = and spaces included', () => {
    expect(parseEnv('A=1\n# c\n\nB = x=y \nC=')).toEqual({ A: '1', B: ' x=y ', C: '' })
    expect(() => parseEnv('A=1\n1BAD=x')).toThrow(/line 2 is not NAME=value/)
    expect(() => parseEnv('novalue')).toThrow(/line 1/)
  })
})

describe('getSettings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-inputs-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'sesame', '-f', join(dir, 'enc')])
  const encrypted = readFileSync(join(dir, 'enc'), 'utf8')
  const base = { hosts: 'deploy@web1', 'private-key': encrypted, passphrase: 'sesame', run: 'true', 'known-hosts': '', fingerprint: '' }

  const withInputs = (inputs: Record<string, string>): void => {
    for (const [k, v] of Object.entries(inputs)) vi.stubEnv(`INPUT_${k.toUpperCase()}`, v)
  }
  afterEach(() => {
    vi.unstubAllEnvs()
  })

  test('reads defaults into one typed object', () => {
    withInputs(base)
    const s = getSettings({})
    expect(s.hosts).toHaveLength(1)
    expect(s.auth.privateKey?.type).toBe('ssh-ed25519')
    expect(s).toMatchObject({
      shell: 'bash -e',
      concurrency: 10,
      connectTimeoutMs: 20_000,
      connectRetries: 4,
      keepaliveIntervalMs: 15_000,
      keepaliveCountMax: 3
    })
    expect(s.steps[0]).toMatchObject({ kind: 'run', script: 'true', timeoutMs: 0, retries: 0, retryDelayMs: 5000 })
  })

  test('keeps the script byte for byte, leading and trailing whitespace included', () => {
    withInputs({ ...base, run: '  echo "a  b"\n\n' })
    expect((getSettings({}).steps[0] as RunStep).script).toBe('  echo "a  b"\n\n')
  })

  test.each([
    [{ concurrency: '0' }, /'concurrency': '0' is not a whole number of at least 1/],
    [{ port: '70000' }, /'port': port 70000 is out of range/],
    [{ hosts: 'u@web1 u@web1' }, /'hosts': 'u@web1' is listed twice/],
    [{ hosts: 'web1' }, /'hosts': 'web1' has no user/],
    [{ 'connect-timeout': '-1s' }, /'connect-timeout': '-1s' is negative/],
    [{ 'connect-timeout': '0' }, /'connect-timeout': '0' must be more than 0/],
    [{ 'keepalive-interval': 'soon' }, /'keepalive-interval': 'soon' is not a duration/],
    [{ 'keepalive-count-max': '0' }, /'keepalive-count-max'/],
    [{ 'host-key-check': 'loose' }, /'host-key-check': 'loose' is not one of strict, off/],
    [{ agent: 'yes' }, /'agent': 'yes' is not one of auto, true, false/],
    [{ agent: 'true' }, /'agent': 'true' but SSH_AUTH_SOCK is not set/],
    [{ run: '  ' }, /'run': no script given/],
    [{ env: 'A=1\n=2' }, /'env': line 2/],
    [{ shell: 'bash\n-e' }, /'shell': must be one line/],
    [{ 'known-hosts': 'web1 ssh-ed25519' }, /'known-hosts': known-hosts line 1/],
    [{ fingerprint: 'SHA1:abc' }, /'fingerprint': line 1: expected SHA256/],
    [{ timeout: '-3' }, /'timeout'/],
    [{ retries: 'two' }, /'retries'/],
    [{ 'retry-delay': '1d' }, /'retry-delay'/],
    [{ steps: '- run: x' }, /'steps': give one of run, run-file and steps, not run and steps/],
    [{ run: '', steps: '- run: x\n  bogus: 1' }, /'steps': step 1: unknown key 'bogus'/],
    [{ strategy: 'rolling' }, /'strategy': 'rolling' is not one of host, step/],
    [{ batch: '0' }, /'batch'/],
    [{ 'max-failures': 'some' }, /'max-failures'/],
    [{ shard: '3/2' }, /'shard'/],
    [{ 'dry-run': 'perhaps' }, /'dry-run'/],
    [{ 'proxy-jump': 'bastion:0' }, /'proxy-jump'/],
    [{ 'proxy-jump': 'a@b c@d' }, /'proxy-jump': 'a@b c@d': hops are separated by commas/],
    [{ 'proxy-jump': 'u@bastion', 'proxy-private-key': 'junk' }, /'proxy-private-key': the private key could not be read/],
    [{ passphrase: 'wrong' }, /'private-key': the private key could not be read with the given passphrase/],
    [{ 'private-key': 'not a key', passphrase: '' }, /'private-key': the private key could not be read/],
    [{ 'private-key': '', passphrase: '' }, /'private-key': no credentials/]
  ])('refuses %o naming the input', (override, message) => {
    withInputs({ ...base, ...override })
    let error: unknown
    try {
      getSettings({})
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(InputError)
    expect((error as Error).message).toMatch(message)
  })

  test('never quotes a secret in an error', () => {
    withInputs({ ...base, passphrase: 'not-the-passphrase-XYZ' })
    expect(() => getSettings({})).toThrow(InputError)
    try {
      getSettings({})
    } catch (err) {
      expect((err as Error).message).not.toContain('not-the-passphrase-XYZ')
      expect((err as Error).message).not.toContain(encrypted.split('\n')[1])
    }
  })

  test('registers each secret and each line of the key before parsing anything else', () => {
    const writes: string[] = []
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      writes.push(String(chunk))
      return true
    })
    // Secrets of their own: one registered by an earlier test is not announced to the runner again.
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'sesame-once', '-f', join(dir, 'once')])
    const key = readFileSync(join(dir, 'once'), 'utf8')
    const before = new Set(knownSecrets())
    withInputs({ ...base, 'private-key': key, passphrase: 'sesame-once', password: 'pw-123', concurrency: 'bad' })
    try {
      expect(() => getSettings({})).toThrow(/concurrency/)
    } finally {
      spy.mockRestore()
    }
    const masked = writes.filter((w) => w.startsWith('::add-mask::')).map((w) => w.slice('::add-mask::'.length).trim())
    expect(masked).toContain('sesame-once')
    expect(masked).toContain('pw-123')
    // The BEGIN and END lines are every key's: announced once, by whichever test came first.
    for (const keyLine of key.trim().split('\n')) expect(masked.includes(keyLine) || before.has(keyLine), keyLine).toBe(true)
  })

  test('plan inputs: steps, strategy, batches with max-failures 0 by default, shard, dry-run, proxy-jump', () => {
    withInputs({
      ...base,
      hosts: 'u@a u@b u@c u@d u@e',
      run: '',
      steps: '- name: A\n  run: x\n- run: y',
      strategy: 'step',
      batch: '1,50%',
      shard: '',
      'proxy-jump': 'jump@bastion:2222',
      'dry-run': 'true'
    })
    const s = getSettings({})
    expect(s.steps.map((x) => x.name)).toEqual(['A', 'step 2'])
    expect(s.batches.map((b) => b.map((h) => h.hostname))).toEqual([['a'], ['b', 'c', 'd'], ['e']])
    expect(s).toMatchObject({ strategy: 'step', maxFailures: 0, dryRun: true })
    const route = s.hosts[0].route
    expect(route?.via === 'jump' && route.hops.map((h) => h.host)).toMatchObject([{ user: 'jump', hostname: 'bastion', port: 2222 }])
    expect(route?.via === 'jump' && route.hops[0].auth.privateKey?.type).toBe('ssh-ed25519')
    // Every host shares the one chain: one bastion connection for all.
    expect(new Set(s.hosts.map((h) => (h.route?.via === 'jump' ? h.route.hops : undefined))).size).toBe(1)
    withInputs({ shard: '2/2', batch: '', 'max-failures': '40%' })
    const sharded = getSettings({})
    expect(sharded.hosts.map((h) => h.hostname)).toEqual(['b', 'd'])
    expect(sharded.maxFailures).toBe(0) // 40% of 2 hosts
    withInputs({ shard: '', 'max-failures': '' })
    expect(getSettings({}).maxFailures).toBe(Infinity)
  })

  test('results-file resolves in the workspace; a directory is refused', () => {
    withInputs({ ...base, hosts: 'u@a u@b u@c', shard: '2/2', 'results-file': 'out/shard-2.json' })
    const s = getSettings({ GITHUB_WORKSPACE: dir })
    expect(s).toMatchObject({ resultsFile: join(dir, 'out/shard-2.json'), shard: { index: 2, count: 2 }, inventory: ['u@a', 'u@b', 'u@c'] })
    withInputs({ 'results-file': '.' })
    expect(() => getSettings({ GITHUB_WORKSPACE: dir })).toThrow("Invalid input 'results-file': '.' is a directory")
  })

  test('results-file is checked before anything connects: below a file, or through a link leading out, is an input error', () => {
    const ws = mkdtempSync(join(dir, 'ws-'))
    writeFileSync(join(ws, 'README.md'), 'readme')
    withInputs({ ...base, 'results-file': 'README.md/shard.json' })
    expect(() => getSettings({ GITHUB_WORKSPACE: ws })).toThrow(
      "Invalid input 'results-file': 'README.md/shard.json': README.md is not a directory, so no file can be written below it"
    )
    // A link to a directory inside the workspace is a directory on the way.
    mkdirSync(join(ws, 'results'))
    symlinkSync('results', join(ws, 'current'))
    withInputs({ 'results-file': 'current/shard.json' })
    expect(getSettings({ GITHUB_WORKSPACE: ws }).resultsFile).toBe(join(ws, 'current/shard.json'))
    const outside = mkdtempSync(join(tmpdir(), 'ssh-fleet-outside-'))
    try {
      symlinkSync(outside, join(ws, 'out'))
      withInputs({ 'results-file': 'out/shard.json' })
      expect(() => getSettings({ GITHUB_WORKSPACE: ws })).toThrow(
        `Invalid input 'results-file': 'out/shard.json': out is a symbolic link to ${outside}, outside the workspace: refused`
      )
      withInputs({ 'results-file': '../shard.json' })
      expect(() => getSettings({ GITHUB_WORKSPACE: ws })).toThrow(/'\.\.\/shard\.json' is outside the workspace/)
    } finally {
      rmSync(outside, { recursive: true, force: true })
    }
  })

  test('a sudo-password with a line break is an input error (its second line would run as a command)', () => {
    withInputs({ ...base, 'sudo-password': 'pw\nid > /tmp/pwned' })
    expect(() => getSettings({})).toThrow("Invalid input 'sudo-password': has a line break")
    withInputs({ 'sudo-password': 'pw\r' })
    expect(() => getSettings({})).toThrow("Invalid input 'sudo-password': has a line break")
    withInputs({ 'sudo-password': 'pw\n' }) // a YAML block's final newline only
    expect(getSettings({}).sudoPassword).toBe('pw')
  })

  test("the hosts' password goes to a bastion only when it has no key of its own (proxy-private-key)", () => {
    const hopAuth = (s: ReturnType<typeof getSettings>) => {
      const route = s.hosts[0].route
      return route?.via === 'jump' ? route.hops[0].auth : undefined
    }
    withInputs({ ...base, password: 'host-pw', 'proxy-jump': 'jump@bastion' })
    expect(hopAuth(getSettings({}))?.password).toBe('host-pw')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hop')])
    withInputs({ 'proxy-private-key': readFileSync(join(dir, 'hop'), 'utf8') })
    const s = getSettings({})
    expect(s.auth.password).toBe('host-pw')
    expect(hopAuth(s)?.password).toBeUndefined()
    expect(hopAuth(s)?.privateKey?.type).toBe('ssh-ed25519')
  })

  test('run-file is read through the workspace: a link to /proc/self/environ or a file outside is an input error', () => {
    const ws = mkdtempSync(join(dir, 'ws-'))
    symlinkSync('/proc/self/environ', join(ws, 'deploy.sh'))
    withInputs({ ...base, run: '', 'run-file': 'deploy.sh' })
    expect(() => getSettings({ GITHUB_WORKSPACE: ws })).toThrow(
      "Invalid input 'run-file': 'deploy.sh': deploy.sh is a symbolic link to /proc/"
    )
    withInputs({ 'run-file': '/etc/passwd' })
    expect(() => getSettings({ GITHUB_WORKSPACE: ws })).toThrow("Invalid input 'run-file': '/etc/passwd' is outside the workspace")
    withInputs({ 'run-file': '', steps: '- run-file: ../../../../etc/passwd' })
    expect(() => getSettings({ GITHUB_WORKSPACE: ws })).toThrow(/Invalid input 'steps': step 1.*is outside the workspace/)
  })

  test("passphrase and password are taken exactly, spaces included; only a YAML block's final newline goes", () => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', ' spaced phrase ', '-f', join(dir, 'spaced')])
    withInputs({
      ...base,
      'private-key': readFileSync(join(dir, 'spaced'), 'utf8'),
      passphrase: ' spaced phrase ',
      password: '  pw with spaces \n'
    })
    const s = getSettings({})
    expect(s.auth.privateKey?.type).toBe('ssh-ed25519')
    expect(s.auth.password).toBe('  pw with spaces ')
  })

  test('a public key given as private-key is an input error', () => {
    withInputs({ ...base, 'private-key': readFileSync(join(dir, 'enc.pub'), 'utf8'), passphrase: '' })
    expect(() => getSettings({})).toThrow(
      "Invalid input 'private-key': this is a public key (a .pub file or an authorized_keys line); give the private key"
    )
  })

  test.each(['bad user', 'deploy\nroot', '-oProxyCommand=id', 'a;b'])('username %j is refused', (username) => {
    withInputs({ ...base, hosts: 'web1', username })
    expect(() => getSettings({})).toThrow(/^Invalid input 'username': .* is not a user name/s)
  })

  test('agent auto uses SSH_AUTH_SOCK only when set', () => {
    withInputs({ ...base, 'private-key': '', passphrase: '' })
    expect(getSettings({ SSH_AUTH_SOCK: '/tmp/agent.sock' }).auth.agent).toBe('/tmp/agent.sock')
    withInputs({ ...base, agent: 'false' })
    expect(getSettings({ SSH_AUTH_SOCK: '/tmp/agent.sock' }).auth.agent).toBeUndefined()
  })

  test('PKCS#8 keys (openssl genpkey): read, plain or encrypted; a missing or wrong passphrase and a key SSH has no type for are named', () => {
    const genpkey = (file: string, args: string[]): string => {
      execFileSync('openssl', ['genpkey', ...args, '-out', join(dir, file)])
      return readFileSync(join(dir, file), 'utf8')
    }
    const rsa = genpkey('rsa-enc.pem', ['-algorithm', 'RSA', '-aes256', '-pass', 'pass:sesame'])
    withInputs({ ...base, 'private-key': rsa })
    expect(getSettings({}).auth.privateKey?.type).toBe('ssh-rsa')
    withInputs({ ...base, 'private-key': rsa, passphrase: 'wrong' })
    expect(() => getSettings({})).toThrow(
      "Invalid input 'private-key': the private key could not be read with the given passphrase: the passphrase does not decrypt it"
    )
    withInputs({ ...base, 'private-key': rsa, passphrase: '' })
    expect(() => getSettings({})).toThrow(
      "Invalid input 'private-key': the private key could not be read: it is encrypted (BEGIN ENCRYPTED PRIVATE KEY): give its passphrase"
    )
    withInputs({ ...base, 'private-key': genpkey('ed448.pem', ['-algorithm', 'ED448']), passphrase: '' })
    expect(() => getSettings({})).toThrow(
      "Invalid input 'private-key': the private key could not be read: a PKCS#8 key, but a key of type ed448: SSH takes RSA, ECDSA (P-256, P-384, P-521) or ed25519"
    )
    withInputs({
      ...base,
      'private-key': genpkey('k1.pem', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1']),
      passphrase: ''
    })
    expect(() => getSettings({})).toThrow(/a PKCS#8 key, but an EC key on secp256k1/)
    withInputs({ ...base, 'private-key': genpkey('ed.pem', ['-algorithm', 'ED25519']), passphrase: '' })
    const converted = getSettings({}).auth.privateKey
    expect(converted?.type).toBe('ssh-ed25519')
    expect(converted?.verify(Buffer.from('x'), converted.sign(Buffer.from('x')) as Buffer)).toBe(true)
  })

  test('agent pageant: on Windows with the bundled ssh2; elsewhere an input error', () => {
    withInputs({ ...base, agent: 'pageant' })
    expect(getSettings({}, 'win32').auth.agent).toBe('pageant')
    expect(() => getSettings({}, 'linux')).toThrow(/^Invalid input 'agent': 'pageant' is for Windows runners \(this one is linux\)/)
  })

  test('agent pageant with an ssh2 that has no PageantAgent (its main branch dropped it) is an input error', async () => {
    // A fake is the only way to have it: the ssh2 installed here still has Pageant.
    vi.resetModules()
    vi.doMock('ssh2', async (original) => {
      // ssh2 is CommonJS: its exports are the default export's properties.
      const ssh2 = { ...(await original<{ default: typeof import('ssh2') }>()).default, PageantAgent: undefined }
      return { ...ssh2, default: ssh2 }
    })
    try {
      const fresh = await import('../../src/plan/inputs')
      withInputs({ ...base, agent: 'pageant' })
      expect(() => fresh.getSettings({}, 'win32')).toThrow(
        /^Invalid input 'agent': 'pageant' is not available: the ssh2 library in this build of the action has no Pageant support/
      )
    } finally {
      vi.doUnmock('ssh2')
      vi.resetModules()
    }
  })
})
