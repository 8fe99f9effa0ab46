/**
 * The action (dist/index.js, run as the runner runs it) against a real OpenSSH sshd on loopback.
 * One sshd listens on 8 ports: 8 hosts. A script tells hosts apart by the server port in SSH_CONNECTION.
 */
import { createHash, createPrivateKey } from 'node:crypto'
import { execFileSync, spawn } from 'node:child_process'
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { inline } from '../../src/report/markdown'
import { hostResult, runAction } from '../helpers/action'
import { useSshd } from '../helpers/fixtures'
import { hostList, hostName, isRoot, keygen, peakOverlap, startSshd, type Sshd } from '../helpers/sshd'

let sshd: Sshd
const PASSWORD = 'Correct-Horse-9'
const PORT = '${SSH_CONNECTION##* }'

useSshd({ ports: 8, password: isRoot ? PASSWORD : undefined }, (started) => (sshd = started))

const base = (): Record<string, string> => ({
  hosts: hostList(sshd),
  'private-key': sshd.clientKey,
  'known-hosts': sshd.knownHosts
})
const name = (port: number): string => hostName(sshd, port)

describe('running a script on a fleet', () => {
  test('every host runs the script; outputs, summary and tally report it', async () => {
    const run = await runAction({ ...base(), run: 'echo "hello from $USER on port ' + PORT + '"' })
    expect(run.code).toBe(0)
    expect(run.results).toHaveLength(8)
    for (const port of sshd.ports) {
      expect(hostResult(run, name(port))).toMatchObject({ status: 'success', exitCode: 0, attempts: 1, error: null })
      expect(hostResult(run, name(port)).steps[0].stdoutTail).toBe(`hello from ${sshd.user} on port ${port}`)
      expect(run.stdout).toContain(`[${name(port)}] hello from ${sshd.user} on port ${port}`)
    }
    expect(run.outputs.succeeded.split('\n').sort()).toEqual(sshd.ports.map(name).sort())
    expect(run.outputs.failed).toBe('')
    expect(run.annotations.find((a) => a.startsWith('::notice'))).toMatch(/::notice::8\/8 hosts succeeded in \d+\.\ds/)
    expect(run.summary).toContain('8/8 hosts succeeded')
    // A row per host, a column for the one step: its outcome and time.
    for (const port of sshd.ports)
      expect(run.summary.split('\n').find((l) => l.startsWith(`| ${inline(name(port))} |`))).toMatch(
        /^\| \S+ \| ✅ success \| ✅ \d+\.\ds \|/
      )
  })

  test('exit codes and stderr per host; one failing host does not disturb the others', async () => {
    const bad = sshd.ports[3]
    const script = `if [ "${PORT}" = ${bad} ]; then echo "disk full" >&2; exit 3; fi\nsleep 0.3\necho done`
    const run = await runAction({ ...base(), run: script })
    expect(run.code).toBe(1)
    expect(hostResult(run, name(bad))).toMatchObject({ status: 'failed', exitCode: 3, error: 'exit code 3' })
    expect(hostResult(run, name(bad)).steps[0].stderrTail).toBe('disk full')
    expect(run.results.filter((r) => r.status === 'success')).toHaveLength(7)
    expect(run.outputs.failed).toBe(name(bad))
    expect(run.stdout).toContain(`[${name(bad)}] stderr| disk full`)
    const error = run.annotations.find((a) => a.startsWith('::error title='))
    expect(error).toContain(`title=${name(bad).replace(/:/g, '%3A')}%3A run::exit code 3%0Astderr:%0Adisk full`)
    expect(run.stdout).toContain(`::error::1 of 8 hosts failed: ${name(bad)}`)
    expect(run.summary).toContain('### Failed hosts')
    expect(run.summary).toContain(`**${inline(name(bad))}** (step run):\n\n\`\`\`\nexit code 3\nstderr:\ndisk full\n\`\`\``)
  })

  test('12 failed hosts: 9 error annotations of their own, and the failure line says 3 more', async () => {
    const many = await startSshd({ ports: 12 })
    try {
      const run = await runAction({
        hosts: hostList(many),
        'private-key': many.clientKey,
        'known-hosts': many.knownHosts,
        run: 'echo broken >&2; exit 2'
      })
      const errors = run.annotations.filter((a) => a.startsWith('::error'))
      expect(errors).toHaveLength(10)
      expect(errors.filter((a) => a.startsWith('::error title='))).toHaveLength(9)
      expect(errors[9]).toBe('::error::12 of 12 hosts failed; 3 more than the annotations above show: the job summary lists every host')
      expect(run.summary.match(/❌ failed/g)).toHaveLength(12)
    } finally {
      await many.stop()
    }
  })

  test('16 hosts in flight at once: each listens for the cancel, and Node warns of no leak', async () => {
    const many = await startSshd({ ports: 16 })
    try {
      const run = await runAction({
        hosts: hostList(many),
        'private-key': many.clientKey,
        'known-hosts': many.knownHosts,
        run: 'sleep 0.5',
        concurrency: '16'
      })
      expect(run.results.filter((r) => r.status === 'success')).toHaveLength(16)
      expect(run.stderr).not.toContain('MaxListenersExceededWarning')
    } finally {
      await many.stop()
    }
  })

  test('a signal is reported as a signal, not an exit code', async () => {
    const run = await runAction({ ...base(), hosts: name(sshd.ports[0]), run: 'kill -USR1 $$' })
    expect(hostResult(run, name(sshd.ports[0]))).toMatchObject({ status: 'failed', exitCode: null, error: 'killed by signal SIGUSR1' })
    expect(hostResult(run, name(sshd.ports[0])).steps[0].signal).toBe('SIGUSR1')
  })

  test('env is exported to the script, values intact', async () => {
    const run = await runAction({
      ...base(),
      hosts: name(sshd.ports[0]),
      env: 'GREETING=it\'s a "test" $HOME\nEMPTY=',
      run: 'printf "%s|%s|" "$GREETING" "${EMPTY-unset}"'
    })
    expect(hostResult(run, name(sshd.ports[0])).steps[0].stdoutTail).toBe(`it's a "test" $HOME||`)
  })

  test('a 100 KB script with quotes, $VARS, backslashes, heredocs and UTF-8 arrives byte for byte', async () => {
    const alphabet = `abc XYZ 'single' "double" \`tick\` $HOME \${X} \\n \\ % ! # ; & | < > ( ) { } é ü 日本 🚀\t`
    let body = ''
    while (Buffer.byteLength(body) < 100 * 1024) body += alphabet + '\n'
    const script = `cat <<'__SSH_FLEET_END__' | sha256sum\n${body}__SSH_FLEET_END__\nread -r line || echo "stdin is empty"\n`
    expect(Buffer.byteLength(script)).toBeGreaterThan(100 * 1024)
    const run = await runAction({ ...base(), hosts: name(sshd.ports[1]), shell: 'sh -e', run: script })
    const expected = createHash('sha256').update(body).digest('hex')
    expect(hostResult(run, name(sshd.ports[1])).steps[0].stdoutTail).toBe(`${expected}  -\nstdin is empty`)
  })

  test('OpenSSH gives the session a pipe: the script is read from it, no temp file', async () => {
    const run = await runAction({ ...base(), hosts: name(sshd.ports[0]), run: 'readlink /proc/$$/fd/3; readlink /proc/$$/fd/0' })
    expect(hostResult(run, name(sshd.ports[0])).steps[0].stdoutTail).toMatch(/^pipe:\[\d+\]\n\/dev\/null$/)
  })

  test('at most concurrency hosts are in flight, measured on the server', async () => {
    const file = join(sshd.shared, 'inflight.log')
    writeFileSync(file, '', { mode: 0o666 })
    chmodSync(file, 0o666)
    const script = `echo "+ $(date +%s%N)" >> ${file}; sleep 0.5; echo "- $(date +%s%N)" >> ${file}`
    const run = await runAction({ ...base(), concurrency: '3', run: script })
    expect(run.code).toBe(0)
    expect(peakOverlap(file)).toEqual({ peak: 3, events: 16 })
  })

  test('concurrency 1 runs hosts one at a time, each in a group', async () => {
    const run = await runAction({ ...base(), hosts: hostList(sshd, sshd.ports.slice(0, 2)), concurrency: '1', run: 'echo one' })
    const lines = run.stdout.split('\n')
    expect(lines.filter((l) => l.startsWith('::group::'))).toEqual([
      `::group::${name(sshd.ports[0])} › run`,
      `::group::${name(sshd.ports[1])} › run`
    ])
    expect(lines.filter((l) => l === 'one')).toHaveLength(2)
  })
})

describe('host keys', () => {
  test('an unknown host key is refused before login, nothing runs, and the error names the key', async () => {
    const marker = join(sshd.shared, 'should-not-exist')
    const logins = (): number => (sshd.log().match(/Accepted publickey/g) ?? []).length
    const before = logins()
    const run = await runAction({ ...base(), 'known-hosts': '', run: `touch ${marker}` })
    expect(run.code).toBe(1)
    expect(existsSync(marker)).toBe(false)
    for (const r of run.results) {
      expect(r.status).toBe('failed')
      expect(r.attempts).toBe(1)
      expect(r.error).toContain(`${sshd.hostKeyType} ${sshd.fingerprint} is not known`)
    }
    // Refused before authentication: sshd logged no login at all.
    expect(logins()).toBe(before)
  })

  test('a pinned fingerprint, host-scoped or not, is accepted; a wrong one is refused', async () => {
    const hosts = hostList(sshd, sshd.ports.slice(0, 2))
    const pinned = await runAction({ ...base(), hosts, 'known-hosts': '', fingerprint: sshd.fingerprint, run: 'true' })
    expect(pinned.results.map((r) => r.status)).toEqual(['success', 'success'])
    const scoped = await runAction({
      ...base(),
      hosts,
      'known-hosts': '',
      fingerprint: `${name(sshd.ports[0])}=${sshd.fingerprint}`,
      run: 'true'
    })
    expect(scoped.results.map((r) => r.status)).toEqual(['success', 'failed'])
    const wrong = await runAction({ ...base(), hosts, 'known-hosts': '', fingerprint: 'SHA256:' + 'A'.repeat(43), run: 'true' })
    expect(wrong.results.map((r) => r.status)).toEqual(['failed', 'failed'])
    expect(wrong.results[0].error).toContain(sshd.fingerprint)
  })

  test('hashed known_hosts lines for [host]:port are accepted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-kh-'))
    const file = join(dir, 'known_hosts')
    writeFileSync(file, sshd.knownHosts + '\n')
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' })
    const hashed = readFileSync(file, 'utf8')
    rmSync(dir, { recursive: true, force: true })
    expect(hashed).toMatch(/^\|1\|/)
    expect(hashed).not.toContain('127.0.0.1')
    const run = await runAction({ ...base(), 'known-hosts': hashed, run: 'true' })
    expect(run.results.every((r) => r.status === 'success')).toBe(true)
  })

  test('~/.ssh/known_hosts is read only when neither known-hosts nor fingerprint is given; the log says what accepted each key', async () => {
    const home = mkdtempSync(join(tmpdir(), 'ssh-fleet-home-'))
    execFileSync('mkdir', ['-p', join(home, '.ssh')])
    writeFileSync(join(home, '.ssh', 'known_hosts'), sshd.knownHosts + '\n')
    const marker = join(sshd.shared, `pinned-wrong-${Date.now()}`)
    const host = name(sshd.ports[0])
    const used = await runAction({ ...base(), hosts: host, 'known-hosts': '', run: 'true' }, { env: { HOME: home } })
    // A pin that matches nothing narrows trust: the runner's file holds the key, yet nothing runs.
    const pinned = await runAction(
      { ...base(), hosts: host, 'known-hosts': '', fingerprint: 'SHA256:' + 'A'.repeat(43), run: `touch ${marker}` },
      { env: { HOME: home } }
    )
    const good = await runAction(
      { ...base(), hosts: host, 'known-hosts': '', fingerprint: sshd.fingerprint, run: 'true' },
      { env: { HOME: home } }
    )
    const listed = await runAction({ ...base(), hosts: host, run: 'true' }, { env: { HOME: home } })
    rmSync(home, { recursive: true, force: true })
    expect(used.results[0].status).toBe('success')
    expect(used.stdout).toContain(`host key ${sshd.hostKeyType} ${sshd.fingerprint} accepted by ~/.ssh/known_hosts line 1`)
    expect(pinned.results[0]).toMatchObject({ status: 'failed', attempts: 1 })
    expect(pinned.results[0].error).toContain(`${sshd.fingerprint} is not known`)
    expect(existsSync(marker)).toBe(false)
    expect(good.stdout).toContain(`host key ${sshd.hostKeyType} ${sshd.fingerprint} accepted by fingerprint pin`)
    expect(listed.stdout).toContain(`host key ${sshd.hostKeyType} ${sshd.fingerprint} accepted by known-hosts line 1`)
  })

  test('host-key-check off accepts any key with a warning annotation', async () => {
    const run = await runAction({ ...base(), hosts: name(sshd.ports[0]), 'known-hosts': '', 'host-key-check': 'off', run: 'true' })
    expect(run.results[0].status).toBe('success')
    expect(run.annotations.some((a) => a.startsWith('::warning') && a.includes('host-key-check is off'))).toBe(true)
  })
})

describe('authentication', () => {
  const authorize = (key: string): void => {
    appendFileSync(join(sshd.dir, 'authorized_keys'), readFileSync(`${key}.pub`))
  }

  test.each([
    ['ed25519', 'OpenSSH', undefined],
    ['ecdsa', 'OpenSSH', undefined],
    ['rsa', 'PEM', 'PEM'],
    ['rsa', 'OpenSSH', undefined]
  ] as const)('an encrypted %s key in %s format with its passphrase', async (type, _label, format) => {
    const path = join(sshd.dir, `client-${type}-${format ?? 'openssh'}`)
    const key = keygen(path, type, 'pass phrase!', format)
    authorize(path)
    const run = await runAction({ ...base(), hosts: name(sshd.ports[0]), 'private-key': key, passphrase: 'pass phrase!', run: 'echo in' })
    expect(run.results[0]).toMatchObject({ status: 'success' })
  })

  /** A key made by OpenSSL 3 (PKCS#8 PEM), authorised for the test user: the text of its file. */
  const genpkey = (label: string, args: string[], passphrase?: string): string => {
    const path = join(sshd.dir, `pkcs8-${label}-${passphrase ? 'encrypted' : 'plain'}.pem`)
    execFileSync('openssl', ['genpkey', ...args, ...(passphrase ? ['-aes256', '-pass', `pass:${passphrase}`] : []), '-out', path])
    const pem = readFileSync(path, 'utf8')
    const key = createPrivateKey({ key: pem, passphrase })
    let line: string
    if (key.asymmetricKeyType === 'ed25519') {
      // OpenSSH 9.2's ssh-keygen -y reads no PKCS#8 ed25519: the public key from its raw half.
      const wire = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b])
      const raw = Buffer.from(key.export({ format: 'jwk' }).x as string, 'base64url')
      line = `ssh-ed25519 ${Buffer.concat([wire(Buffer.from('ssh-ed25519')), wire(raw)]).toString('base64')}`
    } else {
      line = execFileSync('ssh-keygen', ['-y', ...(passphrase ? ['-P', passphrase] : []), '-f', path], { encoding: 'utf8' }).trim()
    }
    appendFileSync(join(sshd.dir, 'authorized_keys'), `${line}\n`)
    return pem
  }
  const PKCS8_TYPES = [
    ['RSA', ['-algorithm', 'RSA']],
    ['ECDSA P-256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['ECDSA P-384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['ECDSA P-521', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521']],
    ['ed25519', ['-algorithm', 'ED25519']]
  ] as const

  test.each(PKCS8_TYPES)('PKCS#8 PEM as openssl genpkey writes it (%s); its converted form is masked too', async (label, args) => {
    const pem = genpkey(label.replace(/ /g, ''), [...args])
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/)
    const run = await runAction({ ...base(), hosts: name(sshd.ports[0]), 'private-key': pem, run: 'echo in' })
    expect(run.results[0], run.annotations.join('\n')).toMatchObject({ status: 'success' })
    const key = createPrivateKey(pem)
    // RSA goes to ssh2 as PKCS#1, ECDSA as SEC1 (ed25519 as openssh-key-v1, with random check bytes).
    if (key.asymmetricKeyType !== 'ed25519') {
      const converted = key.export({ type: key.asymmetricKeyType === 'rsa' ? 'pkcs1' : 'sec1', format: 'pem' }) as string
      const masked = run.stdout.split('\n').filter((l) => l.startsWith('::add-mask::'))
      for (const line of converted.trim().split('\n').slice(1, -1)) expect(masked).toContain(`::add-mask::${line}`)
    }
  })

  test('encrypted PKCS#8 (genpkey -aes256 -pass) with the passphrase: as private-key and as proxy-private-key', async () => {
    const passphrase = 'pkcs8 pass!'
    const hostKey = genpkey('ed25519', ['-algorithm', 'ED25519'], passphrase)
    const hopKey = genpkey('RSA', ['-algorithm', 'RSA'], passphrase)
    expect(hostKey).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/)
    const logged = sshd.log().length
    const run = await runAction({
      ...base(),
      hosts: name(sshd.ports[1]),
      'private-key': hostKey,
      'proxy-private-key': hopKey,
      'proxy-jump': name(sshd.ports[0]),
      passphrase,
      run: 'echo in'
    })
    expect(run.results[0], run.annotations.join('\n')).toMatchObject({ status: 'success' })
    const accepted =
      sshd
        .log()
        .slice(logged)
        .match(/Accepted publickey for \S+ from 127\.0\.0\.1 port \d+ ssh2: (RSA|ED25519) /g) ?? []
    expect(accepted.some((l) => l.endsWith(': RSA '))).toBe(true)
    expect(accepted.some((l) => l.endsWith(': ED25519 '))).toBe(true)
  })

  test('an encrypted PKCS#8 key as an ssh config IdentityFile, with the passphrase', async () => {
    const passphrase = 'identity-pass'
    const path = join(sshd.dir, 'identity-p384.pem')
    writeFileSync(path, genpkey('ECDSA-P384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], passphrase))
    const config = ['Host app', '  HostName 127.0.0.1', `  Port ${sshd.ports[2]}`, `  User ${sshd.user}`, `  IdentityFile ${path}`]
    const run = await runAction({
      'known-hosts': sshd.knownHosts,
      hosts: 'app',
      'ssh-config': config.join('\n'),
      passphrase,
      run: 'echo in'
    })
    expect(hostResult(run, 'app'), run.annotations.join('\n')).toMatchObject({ status: 'success' })
  })

  test.each(['ed25519', 'rsa'])(
    'a %s key in memory signs its first request: no round trip asking whether the server would take it',
    async (type) => {
      const verbose = await startSshd({ config: ['LogLevel DEBUG1'] })
      try {
        const path = join(verbose.dir, `first-${type}`)
        const key = keygen(path, type)
        appendFileSync(join(verbose.dir, 'authorized_keys'), readFileSync(`${path}.pub`))
        const host = hostName(verbose, verbose.ports[0])
        const run = await runAction({ hosts: host, 'private-key': key, 'known-hosts': verbose.knownHosts, run: 'true' })
        expect(run.results[0].status).toBe('success')
        expect(verbose.log()).toMatch(new RegExp(`Accepted publickey for .* ${type === 'rsa' ? 'RSA' : 'ED25519'} SHA256:`))
        // What sshd logs for a request without a signature (ssh2's own way: ask, then sign).
        expect(verbose.log()).not.toMatch(/test pkalg/)
      } finally {
        await verbose.stop()
      }
    }
  )

  test('a key the server does not know fails as authentication, at once and without retries', async () => {
    const key = keygen(join(sshd.dir, 'stranger'))
    const run = await runAction({ ...base(), hosts: name(sshd.ports[0]), 'private-key': key, run: 'true' })
    expect(run.results[0]).toMatchObject({ status: 'failed', attempts: 1, error: expect.stringContaining('authentication failed') })
    expect(run.durationMs).toBeLessThan(10_000)
  })

  test('the SSH agent at SSH_AUTH_SOCK', async () => {
    const sock = join(sshd.dir, 'agent.sock')
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' })
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20))
      execFileSync('ssh-add', [join(sshd.dir, 'client')], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' })
      const run = await runAction(
        { hosts: name(sshd.ports[0]), 'known-hosts': sshd.knownHosts, run: 'echo via agent' },
        { env: { SSH_AUTH_SOCK: sock } }
      )
      expect(run.results[0]).toMatchObject({ status: 'success' })
      expect(run.results[0].steps[0].stdoutTail).toBe('via agent')
    } finally {
      agent.kill()
    }
  })

  test.runIf(isRoot)('password authentication; a wrong password fails as authentication without retries', async () => {
    const good = await runAction({ hosts: name(sshd.ports[0]), 'known-hosts': sshd.knownHosts, password: PASSWORD, run: 'echo pw' })
    expect(good.results[0]).toMatchObject({ status: 'success' })
    const bad = await runAction({ hosts: name(sshd.ports[0]), 'known-hosts': sshd.knownHosts, password: 'wrong-password', run: 'echo pw' })
    expect(bad.results[0]).toMatchObject({ status: 'failed', attempts: 1, error: expect.stringContaining('authentication failed') })
  })
})

test('keyboard-interactive is answered with the password (ssh2 Server: sshd without PAM cannot prompt)', async () => {
  const { Server, utils } = await import('ssh2')
  const { generateKey } = await import('../../demo/fleet.js')
  const hostKey = generateKey()
  const prompts: string[] = []
  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    client.on('error', () => {})
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'keyboard-interactive') return ctx.reject(['keyboard-interactive'])
      ctx.prompt([{ prompt: 'Password: ', echo: false }], (answers) => {
        prompts.push('Password: ')
        if (answers[0] === 'kbd-secret') ctx.accept()
        else ctx.reject()
      })
    })
    client.on('session', (accept) => {
      accept().on('exec', (acceptExec) => {
        const channel = acceptExec()
        channel
          .on('data', () => {})
          .on('end', () => {
            channel.write('interactive ok\n')
            channel.exit(0)
            channel.end()
          })
      })
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  const pub = utils.parseKey(hostKey.public) as import('ssh2').ParsedKey
  try {
    const known = `[127.0.0.1]:${port} ${pub.type} ${pub.getPublicSSH().toString('base64')}`
    const run = await runAction({ hosts: `u@127.0.0.1:${port}`, password: 'kbd-secret', 'known-hosts': known, run: 'echo' })
    expect(run.results[0]).toMatchObject({ status: 'success' })
    expect(run.results[0].steps[0].stdoutTail).toBe('interactive ok')
    expect(prompts).toEqual(['Password: '])
  } finally {
    server.close()
  }
})

describe('secrets', () => {
  test('no secret reaches a log line, output or summary, debug included', async () => {
    const path = join(sshd.dir, 'secret-key')
    const key = keygen(path, 'ed25519', 'hunter2-passphrase')
    appendFileSync(join(sshd.dir, 'authorized_keys'), readFileSync(`${path}.pub`))
    const run = await runAction(
      {
        ...base(),
        'private-key': key,
        passphrase: 'hunter2-passphrase',
        password: 'the-password-0',
        hosts: hostList(sshd, sshd.ports.slice(0, 2)),
        run: 'echo ok; exit 4'
      },
      { env: { RUNNER_DEBUG: '1', ACTIONS_STEP_DEBUG: 'true' } }
    )
    expect(run.results.map((r) => r.status)).toEqual(['failed', 'failed'])
    const visible = [
      run.stdout
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'))
        .join('\n'),
      run.stderr,
      JSON.stringify(run.outputs),
      run.summary
    ].join('\n')
    const secrets = [
      'hunter2-passphrase',
      'the-password-0',
      ...key
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('-----'))
    ]
    for (const secret of secrets) expect(visible).not.toContain(secret)
    const masked = run.stdout.split('\n').filter((l) => l.startsWith('::add-mask::'))
    expect(masked).toContain('::add-mask::hunter2-passphrase')
    expect(masked).toContain('::add-mask::the-password-0')
    // Masks are registered before anything else is printed.
    expect(run.stdout.split('\n').findIndex((l) => !l.startsWith('::add-mask::'))).toBe(masked.length)
  })
})

describe('invalid input', () => {
  test.each([
    [{ concurrency: '0' }, "Invalid input 'concurrency'"],
    [{ port: '70000' }, "Invalid input 'port'"],
    [{ 'host-key-check': 'maybe' }, "Invalid input 'host-key-check'"],
    [{ 'connect-timeout': '-5' }, "Invalid input 'connect-timeout'"],
    [{ env: 'not an assignment' }, "Invalid input 'env'"],
    [{ 'private-key': 'garbage' }, "Invalid input 'private-key'"],
    [{ run: '' }, "Invalid input 'run'"]
  ])('%o fails the action before any connection', async (override, message) => {
    let connections = 0
    const server = createServer((s) => {
      connections++
      s.destroy()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    try {
      const run = await runAction({ ...base(), hosts: `u@127.0.0.1:${port} u@127.0.0.1:${sshd.ports[0]}`, run: 'true', ...override })
      expect(run.code).toBe(1)
      expect(run.stdout).toContain(`::error::${message}`)
      expect(run.stdout).toContain('Nothing was run on any host')
      expect(run.results).toEqual([])
      expect(connections).toBe(0)
    } finally {
      server.close()
    }
  })
})
