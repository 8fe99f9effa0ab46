/**
 * Servers a fleet really has, beyond stock OpenSSH: dropbear (with and without an SFTP server), every
 * common login shell, a ForceCommand audit wrapper (sshd refuses signals to it), rsa-sha2-512-only
 * public key auth, ForceCommand internal-sftp, and a bastion that does not forward (host certificates:
 * certificates.test.ts). All real servers.
 */
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { hostResult, runAction, type ActionRun } from '../helpers/action'
import { canRunDropbear, startDropbear, type Dropbear } from '../helpers/dropbear'
import { alive, ensureShellUser, ensureTestUser, hostName, isRoot, keygen, startSshd, type Sshd } from '../helpers/sshd'

const workspace = mkdtempSync(join(tmpdir(), 'ssh-fleet-servers-'))
afterAll(() => rmSync(workspace, { recursive: true, force: true }))
/** A small tree to upload: a script, a nested file, an empty directory. */
mkdirSync(join(workspace, 'app/lib'), { recursive: true })
mkdirSync(join(workspace, 'app/empty'))
writeFileSync(join(workspace, 'app/run.sh'), '#!/bin/sh\necho run\n', { mode: 0o755 })
chmodSync(join(workspace, 'app/run.sh'), 0o755)
writeFileSync(join(workspace, 'app/lib/data.bin'), Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256)))
chmodSync(join(workspace, 'app/lib/data.bin'), 0o640)

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex')
const home = (user: string): string => `/home/${user}`

/** The plan of the issue: run, upload, run, and a step that runs into its timeout (let through). */
const plan = (pids: string): string => `
- name: before
  run: echo "before as $(id -un)"
- name: upload
  upload: { from: app, to: ssh-fleet-up/ }
- name: after
  run: cat ssh-fleet-up/lib/data.bin | wc -c; ls ssh-fleet-up
- name: stuck
  run: sleep 60 & echo "$$ $!" > ${pids}.$(id -un).$PPID; wait
  timeout: 2s
  continue-on-error: true
`

/** The uploaded tree is on the host byte for byte, with the default modes. */
function expectUploaded(user: string): void {
  const root = join(home(user), 'ssh-fleet-up')
  expect(sha(join(root, 'lib/data.bin'))).toBe(sha(join(workspace, 'app/lib/data.bin')))
  expect(statSync(join(root, 'run.sh')).mode & 0o777).toBe(0o755)
  expect(statSync(join(root, 'lib/data.bin')).mode & 0o777).toBe(0o644) // 0640 on the runner: not carried over
  expect(statSync(join(root, 'empty')).isDirectory()).toBe(true)
}

/** Every process a timed-out step had written down has ended. */
function expectStopped(run: ActionRun, host: string, pidFiles: string[]): void {
  const stuck = hostResult(run, host).steps.find((s: { name: string }) => s.name === 'stuck')
  expect(stuck).toMatchObject({ status: 'failed', error: 'timed out after 2s; the remote process was stopped' })
  expect(stuck.durationMs).toBeLessThan(7000)
  expect(pidFiles.length).toBeGreaterThan(0)
  for (const file of pidFiles)
    for (const pid of readFileSync(file, 'utf8').trim().split(' ')) expect(alive(pid), `${host} pid ${pid}`).toBe(false)
}

const pidFilesFor = (dir: string, prefix: string, user: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.startsWith(`${prefix}.${user}.`))
    .map((f) => join(dir, f))

describe.runIf(canRunDropbear)('dropbear (needs dropbear-bin and root)', () => {
  let db: Dropbear
  let bare: Dropbear
  afterAll(async () => {
    await db?.stop()
    await bare?.stop()
  })

  test('run, upload, run and a timeout, as a non-root user, over SFTP and where there is none', async () => {
    db = await startDropbear()
    bare = await startDropbear({ sftp: false })
    const pids = join(workspace, 'pids-db')
    chmodSync(workspace, 0o777)
    const hosts = [hostName(db, db.ports[0]), hostName(bare, bare.ports[0])]
    for (const server of [db, bare]) {
      rmSync(join(home(server.user), 'ssh-fleet-up'), { recursive: true, force: true })
      const run = await runAction(
        { hosts: hosts[server === db ? 0 : 1], 'private-key': server.clientKey, 'known-hosts': server.knownHosts, steps: plan(pids) },
        { env: { GITHUB_WORKSPACE: workspace } }
      )
      const host = hosts[server === db ? 0 : 1]
      const r = hostResult(run, host)
      expect(r.status, run.stdout).toBe('success')
      expect(r.steps.map((s: { status: string }) => s.status)).toEqual(['success', 'success', 'success', 'failed'])
      expect(r.steps[0].stdoutTail).toBe(`before as ${db.user}`)
      expect(r.steps[2].stdoutTail).toBe('70000\nempty\nlib\nrun.sh')
      expect(r.steps[1]).toMatchObject({ files: 2, transport: server === db ? 'sftp' : 'exec' })
      expectUploaded(server.user)
      expectStopped(run, host, pidFilesFor(workspace, 'pids-db', server.user))
      rmSync(join(home(server.user), 'ssh-fleet-up'), { recursive: true, force: true })
      for (const f of pidFilesFor(workspace, 'pids-db', server.user)) rmSync(f)
      if (server === bare) {
        expect(run.stdout).toContain(
          'no SFTP on this host (Received exit code 127 while establishing SFTP session): uploading over exec channels'
        )
        expect(run.summary).toContain('(exec, no SFTP)')
      }
    }
  })

  test('a full TMPDIR (a 4 KiB tmpfs) where the script is staged: the step fails naming it, and no copy of the script is left', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ssh-fleet-full-tmp-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4k,mode=1777', 'tmpfs', tmp])
    // dropbear's stdin cannot be reopened by the user: the script is staged in a temp file.
    const small = await startDropbear({ env: { TMPDIR: tmp } })
    try {
      const host = hostName(small, small.ports[0])
      const script = `echo staged\n${'# padding, past what the tmpfs holds\n'.repeat(2000)}`
      const run = await runAction({
        hosts: host,
        'private-key': small.clientKey,
        'known-hosts': small.knownHosts,
        env: 'DEPLOY_TOKEN=tok-3f9a-secret',
        run: script
      })
      const r = hostResult(run, host)
      expect(r).toMatchObject({ status: 'failed', exitCode: 125 })
      expect(readdirSync(tmp)).toEqual([])
      expect(r.steps[0].stdoutTail).toBe('')
      expect(r.steps[0].stderrTail).toContain('No space left on device')
      expect(r.steps[0].stderrTail).toContain(`ssh-fleet: could not write the script to a temporary file in ${tmp} (TMPDIR on the host)`)
    } finally {
      await small.stop()
      execFileSync('umount', [tmp])
      rmSync(tmp, { recursive: true, force: true })
    }
  })

  test('without SFTP, delete mirrors the source over exec channels too', async () => {
    bare ??= await startDropbear({ sftp: false })
    const host = hostName(bare, bare.ports[0])
    const root = join(home(bare.user), 'ssh-fleet-mirror')
    rmSync(root, { recursive: true, force: true })
    const inputs = { hosts: host, 'private-key': bare.clientKey, 'known-hosts': bare.knownHosts }
    // Stale files and directories, names with spaces and quotes included, then a mirror upload.
    const seed = await runAction({
      ...inputs,
      run: `mkdir -p "${root}/old dir/deeper" "${root}/lib" && touch "${root}/old dir/deeper/it's" "${root}/lib/stale" "${root}/gone"`
    })
    expect(seed.code).toBe(0)
    const run = await runAction(
      { ...inputs, steps: `- upload: { from: app, to: ssh-fleet-mirror, delete: true, mode: "0600" }` },
      { env: { GITHUB_WORKSPACE: workspace } }
    )
    expect(hostResult(run, host).status, run.stdout).toBe('success')
    expect(run.stdout).toContain('removed 3 files and 2 directories not in app')
    expect(readdirSync(root).sort()).toEqual(['empty', 'lib', 'run.sh'])
    expect(readdirSync(join(root, 'lib'))).toEqual(['data.bin'])
    expect(statSync(join(root, 'run.sh')).mode & 0o777).toBe(0o600)
    rmSync(root, { recursive: true, force: true })
  })
})

describe.runIf(isRoot)('OpenSSH set-ups (needs root for the test users)', () => {
  const servers: Sshd[] = []
  afterAll(async () => {
    for (const s of servers) await s.stop()
  })
  const start = async (...args: Parameters<typeof startSshd>): Promise<Sshd> => {
    const s = await startSshd(...args)
    servers.push(s)
    return s
  }

  test('every login shell (dash, zsh, fish, tcsh, busybox) and dropbear in one fleet run', async () => {
    const shells = ['dash', 'zsh', 'fish', 'tcsh', 'busybox'] as const
    const users = shells.map(ensureShellUser)
    const sshd = await start({ config: [`AllowUsers ${users.join(' ')}`] })
    const db = canRunDropbear ? await startDropbear() : undefined
    try {
      for (const u of users) rmSync(join(home(u), 'ssh-fleet-up'), { recursive: true, force: true })
      // One key for the fleet: dropbear's user gets the sshd fixture's key too.
      if (db)
        appendFileSync(
          join(home(db.user), '.ssh/authorized_keys'),
          `${readFileSync(join(sshd.dir, 'client.pub'), 'utf8').trim()} ssh-fleet-shells\n`
        )
      const hosts = [...users.map((u) => `${u}@127.0.0.1:${sshd.ports[0]}`), ...(db ? [hostName(db, db.ports[0])] : [])]
      const pids = join(sshd.shared, 'pids-shells')
      const run = await runAction(
        {
          hosts: hosts.join('\n'),
          'private-key': sshd.clientKey,
          'known-hosts': [sshd.knownHosts, db?.knownHosts ?? ''].join('\n'),
          steps: plan(pids)
        },
        { env: { GITHUB_WORKSPACE: workspace } }
      )
      expect(run.code, run.stdout).toBe(0)
      for (const [i, u] of users.entries()) {
        const r = hostResult(run, hosts[i])
        expect(r.status, `${shells[i]}: ${run.stdout}`).toBe('success')
        expect(r.steps[0].stdoutTail).toBe(`before as ${u}`)
        expect(r.steps[2].stdoutTail).toBe('70000\nempty\nlib\nrun.sh')
        expectUploaded(u)
        expectStopped(run, hosts[i], pidFilesFor(sshd.shared, 'pids-shells', u))
      }
      if (db) expect(hostResult(run, hosts.at(-1) as string).status).toBe('success')
    } finally {
      if (db) {
        await db.stop()
        const keys = join(home(db.user), '.ssh/authorized_keys')
        writeFileSync(
          keys,
          readFileSync(keys, 'utf8')
            .split('\n')
            .filter((l) => !l.endsWith(' ssh-fleet-shells'))
            .join('\n')
        )
      }
    }
  })

  test('a ForceCommand audit wrapper refuses signals: a timeout still stops the script and its children', async () => {
    const wrapped = await start({
      // The wrapper lives in the fixture's directory, known once it exists (configs are written by then).
      prepare: (dir) => {
        writeFileSync(join(dir, 'audit-wrap'), '#!/bin/sh\nexec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n', { mode: 0o755 })
        appendFileSync(join(dir, 'sshd_config.0'), `ForceCommand ${join(dir, 'audit-wrap')}\n`)
      }
    })
    const host = hostName(wrapped, wrapped.ports[0])
    const pids = join(wrapped.shared, 'pids-forced')
    const run = await runAction({
      hosts: host,
      'private-key': wrapped.clientKey,
      'known-hosts': wrapped.knownHosts,
      run: `sleep 60 & echo "$$ $!" > ${pids}; wait`,
      timeout: '2s'
    })
    const r = hostResult(run, host)
    expect(r).toMatchObject({ status: 'failed', error: 'timed out after 2s; the remote process was stopped' })
    await new Promise((res) => setTimeout(res, 200))
    for (const pid of readFileSync(pids, 'utf8').trim().split(' ')) expect(alive(pid)).toBe(false)
    expect(wrapped.log()).toContain('refusing to send signal TERM to forced-command session')
  })

  test('a server that accepts only rsa-sha2-512 takes an RSA key', async () => {
    let rsaKey = ''
    // In a Match block, as hardened set-ups scope it: server-sig-algs (sent before the user is known)
    // still lists rsa-sha2-256, so ssh2 signs with it first and is refused.
    const sshd = await start({
      prepare: (dir) => {
        rsaKey = keygen(join(dir, 'client-rsa'), 'rsa')
        appendFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client-rsa.pub')))
        appendFileSync(join(dir, 'sshd_config.0'), `Match User ${ensureTestUser()}\n  PubkeyAcceptedAlgorithms rsa-sha2-512\n`)
      }
    })
    const host = hostName(sshd, sshd.ports[0])
    const run = await runAction({ hosts: host, 'private-key': rsaKey, 'known-hosts': sshd.knownHosts, run: 'echo signed' })
    expect(hostResult(run, host), run.stdout).toMatchObject({ status: 'success', attempts: 1 })
    expect(sshd.log()).toMatch(/Accepted publickey for \S+ from 127\.0\.0\.1 port \d+ ssh2: RSA SHA256:/)
    expect(sshd.log()).toContain('signature algorithm rsa-sha2-256 not in PubkeyAcceptedAlgorithms')
  })

  test('an authentication failure names the user, the key offered and what the server accepts', async () => {
    const sshd = await start({ password: 'Not-Used-7' })
    const stranger = keygen(join(sshd.dir, 'stranger'))
    const fingerprint = execFileSync('ssh-keygen', ['-lf', join(sshd.dir, 'stranger.pub')], { encoding: 'utf8' }).split(/\s+/)[1]
    const host = hostName(sshd, sshd.ports[0])
    const run = await runAction({ hosts: host, 'private-key': stranger, 'known-hosts': sshd.knownHosts, run: 'true' })
    const r = hostResult(run, host)
    expect(r).toMatchObject({ status: 'failed', attempts: 1 })
    expect(r.error).toBe(
      `authentication failed: ${sshd.user}@127.0.0.1: publickey ssh-ed25519 ${fingerprint} refused; server accepts: publickey,password`
    )
  })

  test('AuthenticationMethods publickey,password with only the key: the key is reported accepted, and what else is required', async () => {
    const sshd = await start({ password: 'Not-Used-7', config: ['AuthenticationMethods publickey,password'] })
    const fingerprint = execFileSync('ssh-keygen', ['-lf', join(sshd.dir, 'client.pub')], { encoding: 'utf8' }).split(/\s+/)[1]
    const host = hostName(sshd, sshd.ports[0])
    const run = await runAction({ hosts: host, 'private-key': sshd.clientKey, 'known-hosts': sshd.knownHosts, run: 'true' })
    const r = hostResult(run, host)
    expect(r).toMatchObject({ status: 'failed', attempts: 1 })
    expect(r.error).toBe(
      `authentication failed: ${sshd.user}@127.0.0.1: publickey ssh-ed25519 ${fingerprint} accepted, but the server requires another method as well (partial success); server accepts: password`
    )
  })

  test('ForceCommand internal-sftp: the annotation shows what the server printed on stdout', async () => {
    const sshd = await start({ config: ['ForceCommand internal-sftp'] })
    const host = hostName(sshd, sshd.ports[0])
    const run = await runAction({ hosts: host, 'private-key': sshd.clientKey, 'known-hosts': sshd.knownHosts, run: 'echo never' })
    expect(hostResult(run, host).status).toBe('failed')
    const error = run.annotations.find((a) => a.startsWith('::error title='))
    expect(error).toContain('stdout:%0AThis service allows sftp connections only.')
    expect(run.summary).toContain('This service allows sftp connections only.')
  })

  test('a bastion with AllowTcpForwarding no: named as such, not retried', async () => {
    const bastion = await start({ config: ['AllowTcpForwarding no'] })
    const target = await start()
    const host = hostName(target, target.ports[0])
    const run = await runAction({
      hosts: host,
      'private-key': target.clientKey,
      'proxy-private-key': bastion.clientKey,
      'known-hosts': [bastion.knownHosts, target.knownHosts].join('\n'),
      'proxy-jump': hostName(bastion, bastion.ports[0]),
      run: 'true'
    })
    const r = hostResult(run, host)
    expect(r).toMatchObject({ status: 'unreachable', attempts: 1 })
    expect(r.error).toContain('the bastion refused to forward (administratively prohibited): AllowTcpForwarding is off there')
    expect(run.stdout).not.toContain('retrying')
  })
})
