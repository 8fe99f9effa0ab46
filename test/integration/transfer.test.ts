/**
 * upload and local steps against a real sshd: a tree with nested directories, binary files, unicode
 * names and modes; a 250 MB file with flat memory; mirroring with delete; a connection cut
 * mid-upload (our TCP proxy); local commands seeing their host, in order with the plan.
 */
import { createHash, randomBytes } from 'node:crypto'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
  closeSync
} from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { hostResult, runAction } from '../helpers/action'
import { useSshd, useWorkspace } from '../helpers/fixtures'
import { startProxy } from '../helpers/proxy'
import { hostList, hostName, type Sshd } from '../helpers/sshd'

let sshd: Sshd
const workspace = useWorkspace('workspace')
useSshd({ ports: 3 }, (started) => (sshd = started))

const name = (port: number): string => hostName(sshd, port)
const base = (ports = sshd.ports): Record<string, string> => ({
  hosts: hostList(sshd, ports),
  'private-key': sshd.clientKey,
  'known-hosts': sshd.knownHosts
})
const env = (): { env: Record<string, string> } => ({ env: { GITHUB_WORKSPACE: workspace } })
const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex')
/** A directory on the "host" (same machine) the test user may write to. */
function remoteDir(label: string): string {
  const dir = join(sshd.shared, `${label}-${Math.random().toString(36).slice(2)}`)
  mkdirSync(dir, { mode: 0o777 })
  chmodSync(dir, 0o777)
  return dir
}
/** Every file below `root` with its hash and mode. */
function tree(root: string): Record<string, { sha: string; mode: number }> {
  const out: Record<string, { sha: string; mode: number }> = {}
  const visit = (dir: string, rel: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name)
      const r = rel ? `${rel}/${e.name}` : e.name
      if (e.isDirectory()) visit(path, r)
      else out[r] = { sha: sha(path), mode: statSync(path).mode & 0o777 }
    }
  }
  visit(root, '')
  return out
}
/** A file of `mb` MiB written 1 MiB at a time (random, repeated), without holding it in memory. */
function bigFile(path: string, mb: number): void {
  const block = randomBytes(1024 * 1024)
  const fd = openSync(path, 'w')
  for (let i = 0; i < mb; i++) {
    block[0] = i & 0xff
    writeSync(fd, block)
  }
  closeSync(fd)
}

describe('upload', () => {
  test('a tree: nested directories, binary files, unicode names, default modes (0755 executable, else 0644); reported per host', async () => {
    const src = join(workspace, 'release')
    mkdirSync(join(src, 'bin'), { recursive: true })
    mkdirSync(join(src, 'assets/img/ünïcödé 日本'), { recursive: true })
    mkdirSync(join(src, 'empty-dir'), { recursive: true })
    writeFileSync(join(src, 'bin/start'), '#!/bin/sh\necho start\n', { mode: 0o755 })
    writeFileSync(join(src, 'assets/img/ünïcödé 日本/logo ✓.bin'), randomBytes(300_000))
    writeFileSync(join(src, 'config.json'), '{"a":1}', { mode: 0o600 })
    chmodSync(join(src, 'config.json'), 0o600)
    chmodSync(join(src, 'bin/start'), 0o755)
    const targets = sshd.ports.slice(0, 2).map(() => remoteDir('tree'))
    // Both hosts are one user on one machine, so they write the same directory: `compare: none` has each
    // send every file (by default the second could find the first one's files there, unchanged).
    const run = await runAction(
      { ...base(sshd.ports.slice(0, 2)), steps: `- upload: { from: release, to: ${targets[0]}/app, compare: none }\n` },
      env()
    )
    expect(run.code).toBe(0)
    // The runner's 0600 is not carried over: without mode:, files are 0644, or 0755 when executable.
    const expected = Object.fromEntries(Object.entries(tree(src)).map(([k, v]) => [k, { ...v, mode: v.mode & 0o111 ? 0o755 : 0o644 }]))
    expect(tree(join(targets[0], 'app'))).toEqual(expected)
    expect(expected['config.json'].mode).toBe(0o644)
    expect(existsSync(join(targets[0], 'app/empty-dir'))).toBe(true)
    expect(statSync(join(targets[0], 'app/bin/start')).mode & 0o777).toBe(0o755)
    expect(readdirSync(join(targets[0], 'app/bin')).some((f) => f.includes('ssh-fleet-part'))).toBe(false)
    for (const port of sshd.ports.slice(0, 2)) {
      const step = hostResult(run, name(port)).steps[0]
      expect(step).toMatchObject({ status: 'success', files: 3, bytes: 300_000 + 21 + 7, unchanged: 0, deleted: 0 })
      expect(step.bytesPerSecond).toBeGreaterThan(0)
    }
    expect(run.stdout).toMatch(/uploaded 3 files, 300\.\d KB in \d+\.\ds \([\d.]+ [KMG]B\/s\)/)
    expect(run.summary).toContain('| 3 files, 300.0 KB |')
  })

  test('mode applies to every file; a single file can land under a name of its own', async () => {
    writeFileSync(join(workspace, 'motd'), 'hello\n')
    const dir = remoteDir('single')
    const run = await runAction(
      { ...base([sshd.ports[0]]), steps: `- upload: { from: motd, to: ${dir}/etc/motd.txt, mode: "0640" }` },
      env()
    )
    expect(run.code).toBe(0)
    expect(readFileSync(join(dir, 'etc/motd.txt'), 'utf8')).toBe('hello\n')
    expect(statSync(join(dir, 'etc/motd.txt')).mode & 0o777).toBe(0o640)
  })

  test('as scp and cp: several sources go into to as a directory (created); one file into a directory that exists', async () => {
    mkdirSync(join(workspace, 'peer/dist/lib'), { recursive: true })
    mkdirSync(join(workspace, 'peer/config'), { recursive: true })
    writeFileSync(join(workspace, 'peer/a.txt'), 'a\n')
    writeFileSync(join(workspace, 'peer/b.txt'), 'b\n')
    writeFileSync(join(workspace, 'peer/dist/app.js'), 'app\n')
    writeFileSync(join(workspace, 'peer/dist/lib/x.js'), 'x\n')
    writeFileSync(join(workspace, 'peer/config/app.yml'), 'yml\n')
    const dir = remoteDir('peer')
    mkdirSync(join(dir, 'existing'))
    chmodSync(join(dir, 'existing'), 0o777)
    const steps = [
      // scp-action's `source: a.txt,b.txt` with `target: test`, test missing: a directory holding both.
      `- upload: { from: [peer/a.txt, peer/b.txt], to: ${dir}/test }`,
      `- upload: { from: [peer/dist, peer/config/app.yml], to: ${dir}/app }`,
      `- upload: { from: peer/a.txt, to: ${dir}/existing }`,
      `- upload: { from: peer/b.txt, to: ${dir}/named.txt }`
    ].join('\n')
    const run = await runAction({ ...base([sshd.ports[0]]), steps }, env())
    expect(run.code, run.stdout).toBe(0)
    const contents = (root: string): Record<string, string> =>
      Object.fromEntries(Object.keys(tree(root)).map((f) => [f, readFileSync(join(root, f), 'utf8')]))
    expect(contents(join(dir, 'test'))).toEqual({ 'a.txt': 'a\n', 'b.txt': 'b\n' })
    expect(contents(join(dir, 'app'))).toEqual({ 'app.js': 'app\n', 'lib/x.js': 'x\n', 'app.yml': 'yml\n' })
    expect(contents(join(dir, 'existing'))).toEqual({ 'a.txt': 'a\n' })
    expect(readFileSync(join(dir, 'named.txt'), 'utf8')).toBe('b\n')
  })

  test('two sources landing on one remote path: an input error naming both, before any connection', async () => {
    mkdirSync(join(workspace, 'clash/one'), { recursive: true })
    mkdirSync(join(workspace, 'clash/two'), { recursive: true })
    writeFileSync(join(workspace, 'clash/one/x.txt'), '1')
    writeFileSync(join(workspace, 'clash/two/x.txt'), '2')
    const dir = remoteDir('clash')
    const run = await runAction({ ...base([sshd.ports[0]]), steps: `- upload: { from: [clash/one, clash/two], to: ${dir}/x }` }, env())
    expect(run.code).toBe(1)
    expect(run.stdout + run.stderr).toContain("'clash/one' and 'clash/two' both upload x.txt into")
    expect(readdirSync(dir)).toEqual([])
  })

  // Memory must not follow file size: the file is never held whole. Peak RSS is compared between a 50 MB
  // and a 250 MB upload, not held to one figure: Node 24 collects ssh2's spent packet buffers later than
  // Node 20 (measured: 107 → 108 MB on Node 20, 161 → 190 MB on Node 24 for 200 → 800 MB), a lag that is
  // not data held, and up to 51 MB between the two sizes there. Holding the file whole would add its 200 MB
  // difference; the bound is half of it.
  test('a 250 MB file streams through with flat memory: peak RSS barely moves from a 50 MB one', async () => {
    const peak = async (mb: number): Promise<number> => {
      const file = join(workspace, `big-${mb}.bin`)
      bigFile(file, mb)
      const dir = remoteDir(`big-${mb}`)
      const run = await runAction(
        { ...base([sshd.ports[0]]), steps: `- upload: { from: big-${mb}.bin, to: ${dir}/ }` },
        { ...env(), rusage: true }
      )
      expect(run.code).toBe(0)
      expect(sha(join(dir, `big-${mb}.bin`))).toBe(sha(file))
      rmSync(file)
      rmSync(join(dir, `big-${mb}.bin`))
      const rssMb = (run.usage as { maxRssKb: number }).maxRssKb / 1024
      console.log(
        `${mb} MB upload: peak RSS ${rssMb.toFixed(0)} MB, ${hostResult(run, name(sshd.ports[0])).steps[0].bytesPerSecond / 1e6} MB/s`
      )
      return rssMb
    }
    const small = await peak(50)
    const large = await peak(250)
    expect(large - small).toBeLessThan(100)
    expect(large).toBeLessThan(250)
  })

  test('delete: true mirrors: remote files and directories not in from are removed', async () => {
    const src = join(workspace, 'mirror')
    mkdirSync(join(src, 'keep'), { recursive: true })
    writeFileSync(join(src, 'keep/a.txt'), 'a')
    writeFileSync(join(src, 'b.txt'), 'b')
    const dir = remoteDir('mirror')
    mkdirSync(join(dir, 'old/deeper'), { recursive: true })
    writeFileSync(join(dir, 'old/deeper/stale.txt'), 'x')
    writeFileSync(join(dir, 'stale.txt'), 'x')
    writeFileSync(join(dir, 'keep-but-change.txt'), 'x')
    mkdirSync(join(dir, 'keep'), { recursive: true })
    writeFileSync(join(dir, 'keep/stale-too.txt'), 'x')
    execChmodR(dir)
    const run = await runAction({ ...base([sshd.ports[0]]), steps: `- upload: { from: mirror, to: ${dir}, delete: true }` }, env())
    expect(run.code).toBe(0)
    expect(Object.keys(tree(dir)).sort()).toEqual(['b.txt', 'keep/a.txt'])
    expect(existsSync(join(dir, 'old'))).toBe(false)
    expect(run.stdout).toContain('removed 4 files and 2 directories not in mirror')
  })

  test('a connection cut mid-upload leaves no file at the final name; the retry completes it', async () => {
    const file = join(workspace, 'cut.bin')
    bigFile(file, 30)
    const proxy = await startProxy(sshd.ports[0], { cutAfterBytes: 10 * 1024 * 1024, cutConnections: 1 })
    const again = await startProxy(sshd.ports[0], { cutAfterBytes: 10 * 1024 * 1024 })
    const known = (port: number): string => `[127.0.0.1]:${port} ${sshd.knownHosts.split('\n')[0].split(' ').slice(1).join(' ')}`
    try {
      const failed = remoteDir('cut')
      const noRetry = await runAction(
        {
          hosts: name(again.port),
          'private-key': sshd.clientKey,
          'known-hosts': known(again.port),
          steps: `- upload: { from: cut.bin, to: ${failed}/ }`
        },
        env()
      )
      const r = hostResult(noRetry, name(again.port))
      expect(r.status).toBe('failed')
      expect(r.error).toMatch(/^connection lost during the upload/)
      expect(existsSync(join(failed, 'cut.bin'))).toBe(false)
      const dir = remoteDir('cut-retry')
      const run = await runAction(
        {
          hosts: name(proxy.port),
          'private-key': sshd.clientKey,
          'known-hosts': known(proxy.port),
          steps: `- upload: { from: cut.bin, to: ${dir}/ }\n  retries: 1\n  retry-delay: 0.2s`
        },
        env()
      )
      expect(hostResult(run, name(proxy.port))).toMatchObject({ status: 'success', attempts: 2 })
      expect(hostResult(run, name(proxy.port)).steps[0].attempts).toBe(2)
      expect(sha(join(dir, 'cut.bin'))).toBe(sha(file))
    } finally {
      await proxy.close()
      await again.close()
      rmSync(file)
    }
  })

  test('a failed or timed-out upload leaves no temporary file on the host: those in flight are stopped and removed', async () => {
    const src = join(workspace, 'in-flight')
    mkdirSync(src, { recursive: true })
    for (let i = 0; i < 40; i++) writeFileSync(join(src, `f${String(i).padStart(2, '0')}.bin`), randomBytes(2 * 1024 * 1024))
    const temporary = (dir: string): string[] => readdirSync(dir).filter((f) => f.includes('.ssh-fleet-'))
    // A rename that fails (the destination is a directory) while 15 others are in flight.
    const dir = remoteDir('in-flight')
    mkdirSync(join(dir, 'f05.bin/inside'), { recursive: true })
    const failed = await runAction({ ...base([sshd.ports[0]]), steps: `- upload: { from: in-flight, to: ${dir} }` }, env())
    const step = hostResult(failed, name(sshd.ports[0])).steps[0]
    expect(step.status).toBe('failed')
    expect(step.error).toMatch(/^upload failed: f05\.bin → /)
    expect(temporary(dir)).toEqual([])
    // A step timeout with 16 files in flight on a slow path (each chunk delayed).
    const proxy = await startProxy(sshd.ports[0], { delayMs: 30 })
    const known = `[127.0.0.1]:${proxy.port} ${sshd.knownHosts.split('\n')[0].split(' ').slice(1).join(' ')}`
    try {
      const slow = remoteDir('in-flight-slow')
      const run = await runAction(
        {
          hosts: name(proxy.port),
          'private-key': sshd.clientKey,
          'known-hosts': known,
          steps: `- upload: { from: in-flight, to: ${slow} }\n  timeout: 2s`
        },
        env()
      )
      expect(hostResult(run, name(proxy.port)).steps[0].error).toMatch(/^upload failed: timed out after 2s/)
      expect(temporary(slow)).toEqual([])
    } finally {
      await proxy.close()
      rmSync(src, { recursive: true })
    }
  })

  test('globs (minimatch): a class, a directory named [lang] taken as written, excludes; ** inside a segment refused before connecting', async () => {
    const files = ['site/[lang]/index.html', 'site/[lang]/en/a.html', 'site/l/b.html', 'site/de/c.html', 'site/.env', 'site/cache/x.bin']
    for (const f of [...files, 'site/app.js.map', 'site/lib/deep/d.js.map']) {
      mkdirSync(join(workspace, 'globs', f, '..'), { recursive: true })
      writeFileSync(join(workspace, 'globs', f), f)
    }
    const [classed, literal, excluded] = ['classed', 'literal', 'excluded'].map(remoteDir)
    const steps = [
      `- upload: { from: "globs/site/[dl]*/*.html", to: ${classed} }`,
      `- upload: { from: "globs/site/[lang]/*/*.html", to: ${literal} }`,
      `- upload: { from: globs/site, to: ${excluded}, exclude: ["*.env", cache, "**/*.map", "[lang]"] }`
    ].join('\n')
    const run = await runAction({ ...base([sshd.ports[0]]), steps }, env())
    expect(run.code, run.stdout).toBe(0)
    expect(Object.keys(tree(classed)).sort()).toEqual(['de/c.html', 'l/b.html'])
    expect(Object.keys(tree(literal))).toEqual(['en/a.html'])
    // "[lang]" leaves out the directory of that name and, as a class, l/.
    expect(Object.keys(tree(excluded))).toEqual(['de/c.html'])

    const logins = (sshd.log().match(/Accepted publickey/g) ?? []).length
    const refused = await runAction(
      { ...base([sshd.ports[0]]), steps: `- upload: { from: globs/site, to: ${excluded}, exclude: "**.map" }` },
      env()
    )
    expect(refused.code).toBe(1)
    expect(refused.stdout).toContain(
      "::error::Invalid input 'steps': step 1, upload, field 'exclude': '**.map': ** spans directories only as a whole path segment; write **/*.map for any depth, or *.map for one segment"
    )
    expect((sshd.log().match(/Accepted publickey/g) ?? []).length).toBe(logins)
  })

  test('a missing from is refused before any connection', async () => {
    const logins = (): number => (sshd.log().match(/Accepted publickey/g) ?? []).length
    const before = logins()
    const run = await runAction({ ...base(), steps: '- run: echo hi\n- upload: { from: dist-that-was-never-built, to: /tmp/x }' }, env())
    expect(run.code).toBe(1)
    expect(run.stdout).toContain("::error::Invalid input 'steps': step 2, upload, field 'from': 'dist-that-was-never-built' does not exist")
    expect(logins()).toBe(before)
  })
})

describe('upload: files already on the host', () => {
  /** A tree of `count` files of random sizes (empty ones, and ones of several write requests). */
  function randomTree(root: string, count: number): void {
    for (let i = 0; i < count; i++) {
      const dir = join(root, `d${i % 7}`, `e${i % 3}`)
      mkdirSync(dir, { recursive: true })
      const size = i % 50 === 0 ? 0 : i % 25 === 1 ? 600_000 + i * 1000 : (i * 7919) % 40_000
      writeFileSync(join(dir, `f${i}.bin`), randomBytes(size))
    }
  }
  const upload = (dir: string, from: string, extra = ''): Promise<Awaited<ReturnType<typeof runAction>>> =>
    runAction({ ...base([sshd.ports[0]]), steps: `- upload: { from: ${from}, to: ${dir}${extra} }` }, env())
  const stepOf = (run: Awaited<ReturnType<typeof runAction>>): Record<string, any> => hostResult(run, name(sshd.ports[0])).steps[0]

  test('many files in flight land byte-exact; the same tree again is all unchanged, nothing sent, reported so', async () => {
    const src = join(workspace, 'many')
    randomTree(src, 300)
    const dir = remoteDir('many')
    const first = await upload(dir, 'many')
    expect(first.code, first.stdout).toBe(0)
    expect(tree(dir)).toEqual(Object.fromEntries(Object.entries(tree(src)).map(([k, v]) => [k, { ...v, mode: 0o644 }])))
    expect(readdirSync(dir, { recursive: true }).some((f) => String(f).includes('.ssh-fleet-'))).toBe(false)
    expect(stepOf(first)).toMatchObject({ files: 300, unchanged: 0 })
    // The host's copy carries the runner's modification time (to the second): what the next upload compares.
    const mtime = (path: string): number => Math.floor(statSync(path).mtimeMs / 1000)
    expect(mtime(join(dir, 'd1/e1/f1.bin'))).toBe(mtime(join(src, 'd1/e1/f1.bin')))

    const inode = (): number => statSync(join(dir, 'd1/e1/f1.bin')).ino
    const before = inode()
    const again = await upload(dir, 'many')
    expect(again.code, again.stdout).toBe(0)
    expect(stepOf(again)).toMatchObject({ status: 'success', files: 0, bytes: 0, unchanged: 300, deleted: 0 })
    expect(again.stdout).toMatch(/uploaded 0 files, 0 B in [\d.]+s .*; 300 unchanged \(same size and modification time\), not sent/)
    expect(again.summary).toContain('| 0 files, 0 B, 300 unchanged |')
    // Left as it was, not written again and renamed over.
    expect(inode()).toBe(before)
  })

  test('a file of the same size with another mtime is sent; with the same size and mtime it is sent only with compare: checksum', async () => {
    const src = join(workspace, 'changes')
    mkdirSync(src, { recursive: true })
    for (const f of ['a.txt', 'b.txt', 'c.txt']) writeFileSync(join(src, f), `${f} one\n`)
    const dir = remoteDir('changes')
    expect((await upload(dir, 'changes')).code).toBe(0)
    // a.txt: same size, new content, a later mtime on the runner.
    writeFileSync(join(src, 'a.txt'), 'a.txt two\n')
    utimesSync(join(src, 'a.txt'), new Date(), new Date(Date.now() + 5000))
    // b.txt: the host's copy altered behind our back, size and mtime kept: only a checksum tells.
    const was = statSync(join(dir, 'b.txt'))
    writeFileSync(join(dir, 'b.txt'), 'B.TXT ONE\n')
    utimesSync(join(dir, 'b.txt'), was.atime, was.mtime)
    const quick = await upload(dir, 'changes')
    expect(stepOf(quick)).toMatchObject({ status: 'success', files: 1, unchanged: 2, bytes: 10 })
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('a.txt two\n')
    expect(readFileSync(join(dir, 'b.txt'), 'utf8')).toBe('B.TXT ONE\n')
    const checked = await upload(dir, 'changes', ', compare: checksum')
    expect(stepOf(checked)).toMatchObject({ status: 'success', files: 1, unchanged: 2, bytes: 10 })
    expect(readFileSync(join(dir, 'b.txt'), 'utf8')).toBe('b.txt one\n')
    expect(tree(dir)).toEqual(Object.fromEntries(Object.entries(tree(src)).map(([k, v]) => [k, { ...v, mode: 0o644 }])))
  })

  test('a host copy the login user cannot read (checksum) or cannot chmod (not its own) is sent, not a failure', async () => {
    const src = join(workspace, 'unreadable')
    mkdirSync(src, { recursive: true })
    for (const f of ['a.txt', 'b.txt']) writeFileSync(join(src, f), `${f} one\n`)
    const dir = remoteDir('unreadable')
    expect((await upload(dir, 'unreadable')).code).toBe(0)
    // a.txt: the host's copy unreadable to the login user (mode 000), in a directory it may write.
    chmodSync(join(dir, 'a.txt'), 0)
    const checked = await upload(dir, 'unreadable', ', compare: checksum')
    expect(stepOf(checked), checked.stdout).toMatchObject({ status: 'success', files: 1, unchanged: 1 })
    expect(statSync(join(dir, 'a.txt')).mode & 0o777).toBe(0o644)
    // b.txt: the same bytes and time, but root's and 0600: its mode cannot be set, the rename replaces it.
    const was = statSync(join(dir, 'b.txt'))
    rmSync(join(dir, 'b.txt'))
    writeFileSync(join(dir, 'b.txt'), 'b.txt one\n', { mode: 0o600 })
    chmodSync(join(dir, 'b.txt'), 0o600)
    utimesSync(join(dir, 'b.txt'), was.atime, was.mtime)
    const quick = await upload(dir, 'unreadable')
    expect(stepOf(quick), quick.stdout).toMatchObject({ status: 'success', files: 1, unchanged: 1 })
    expect(statSync(join(dir, 'b.txt')).mode & 0o777).toBe(0o644)
    expect(statSync(join(dir, 'b.txt')).uid).toBe(statSync(join(dir, 'a.txt')).uid)
    expect(tree(dir)).toEqual(Object.fromEntries(Object.entries(tree(src)).map(([k, v]) => [k, { ...v, mode: 0o644 }])))
  })

  test("compare: checksum of 64 unchanged 4 MiB files hashes within the upload's byte budget", async () => {
    const src = join(workspace, 'hashed')
    mkdirSync(src, { recursive: true })
    for (let i = 0; i < 64; i++) writeFileSync(join(src, `f${i}.bin`), randomBytes(4 * 1024 * 1024))
    const dir = remoteDir('hashed')
    expect((await upload(dir, 'hashed')).code).toBe(0)
    const run = await runAction(
      { ...base([sshd.ports[0]]), steps: `- upload: { from: hashed, to: ${dir}, compare: checksum }` },
      { ...env(), rusage: true }
    )
    const rssMb = (run.usage as { maxRssKb: number }).maxRssKb / 1024
    console.log(`checksum compare of 64 × 4 MiB: peak RSS ${rssMb.toFixed(0)} MB`)
    expect(stepOf(run), run.stdout).toMatchObject({ status: 'success', files: 0, unchanged: 64 })
    // Hash blocks come out of the 4 MiB budget; the rest is the 256 MB read through ssh2, not yet collected
    // (125-132 MB on Node 20, up to 177 MB on Node 24, which collects later). The bound is below the 256 MB
    // the host's copies hold, so reading them whole into memory fails it; it does not tell 4 MiB in flight
    // from 16 MiB (RSS is dominated by that lag), so hashing within the budget is not proven here.
    expect(rssMb).toBeLessThan(224)
    rmSync(src, { recursive: true })
  })

  test('compare: mtime with fixed times (Nix: every mtime 1) compares by checksum instead, and says so', async () => {
    const src = join(workspace, 'fixed-times')
    mkdirSync(src, { recursive: true })
    const fix = (): void => {
      for (const f of ['a.txt', 'b.txt']) utimesSync(join(src, f), 1, 1)
    }
    for (const f of ['a.txt', 'b.txt']) writeFileSync(join(src, f), `${f} one\n`)
    fix()
    const dir = remoteDir('fixed-times')
    expect((await upload(dir, 'fixed-times')).code).toBe(0)
    // The next build: a.txt's content changed, its size and (fixed) time kept.
    writeFileSync(join(src, 'a.txt'), 'a.txt two\n')
    fix()
    const run = await upload(dir, 'fixed-times')
    expect(stepOf(run), run.stdout).toMatchObject({ status: 'success', files: 1, unchanged: 1 })
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('a.txt two\n')
    expect(run.stdout).toContain(
      "compare: mtime, but the files' modification times are before 1980, set by the build: comparing by checksum instead"
    )
    expect(run.stdout).toMatch(/; 1 unchanged \(same size and SHA-256\), not sent/)
  })

  test('delete: true with files left unchanged: what is gone from from is removed, the rest is the tree', async () => {
    const src = join(workspace, 'mirror-skips')
    randomTree(src, 40)
    const dir = remoteDir('mirror-skips')
    expect((await upload(dir, 'mirror-skips', ', delete: true')).code).toBe(0)
    rmSync(join(src, 'd1/e1/f1.bin'))
    rmSync(join(src, 'd2/e2/f2.bin'))
    writeFileSync(join(src, 'd3/new.bin'), randomBytes(1000))
    const run = await upload(dir, 'mirror-skips', ', delete: true')
    expect(run.code, run.stdout).toBe(0)
    expect(stepOf(run)).toMatchObject({ status: 'success', files: 1, bytes: 1000, unchanged: 38, deleted: 2 })
    expect(tree(dir)).toEqual(Object.fromEntries(Object.entries(tree(src)).map(([k, v]) => [k, { ...v, mode: 0o644 }])))
    expect(run.summary).toContain('| 1 files, 1.0 KB, 38 unchanged, 2 deleted |')
  })
})

/** The test user must be able to delete what the test (root) created. */
function execChmodR(dir: string): void {
  chmodSync(dir, 0o777)
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name)
    if (e.isDirectory()) execChmodR(path)
    else chmodSync(path, 0o666)
  }
}

describe('local', () => {
  test('runs on the runner once per host, with its variables, in order with the plan', async () => {
    const log = join(remoteDir('order'), 'log')
    writeFileSync(log, '')
    chmodSync(log, 0o666)
    const steps = `
- name: Drain
  local: echo "drain $FLEET_HOST $FLEET_PORT $FLEET_USER $FLEET_HOST_INDEX $STAGE" >> ${log}
  env:
    STAGE: blue
- name: Deploy
  run: echo "deploy \${SSH_CONNECTION##* }" >> ${log}
- name: Enable
  local: echo "enable $FLEET_PORT" >> ${log}; echo "local out for $FLEET_PORT"; echo "local err" >&2
`
    const run = await runAction({ ...base(), steps, concurrency: '1' }, env())
    expect(run.code).toBe(0)
    const expected = sshd.ports.flatMap((p, i) => [`drain 127.0.0.1 ${p} ${sshd.user} ${i} blue`, `deploy ${p}`, `enable ${p}`])
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(expected)
    expect(run.stdout).toContain(`local out for ${sshd.ports[0]}`)
    expect(run.stdout).toContain('stderr| local err')
    expect(hostResult(run, name(sshd.ports[0])).steps[2]).toMatchObject({
      status: 'success',
      exitCode: 0,
      stdoutTail: `local out for ${sshd.ports[0]}`,
      stderrTail: 'local err'
    })
  })

  test('a failing local command fails that host only; a timeout stops it', async () => {
    const bad = sshd.ports[1]
    const run = await runAction(
      { ...base(), steps: `- local: '[ "$FLEET_PORT" != ${bad} ] || { echo "lb refused" >&2; exit 4; }'\n- run: echo deployed` },
      env()
    )
    expect(hostResult(run, name(bad))).toMatchObject({ status: 'failed', exitCode: 4, error: 'exit code 4' })
    expect(hostResult(run, name(bad)).steps).toHaveLength(1)
    expect(run.results.filter((r) => r.status === 'success')).toHaveLength(2)
    const pidFile = join(workspace, 'local-pids')
    const slow = await runAction(
      { ...base([sshd.ports[0]]), steps: `- local: 'sleep 30 & echo $$ $! > ${pidFile}; wait'\n  timeout: 1s` },
      env()
    )
    expect(hostResult(slow, name(sshd.ports[0]))).toMatchObject({
      status: 'failed',
      error: 'timed out after 1s; the local command was stopped'
    })
    await new Promise((r) => setTimeout(r, 200))
    for (const pid of readFileSync(pidFile, 'utf8').trim().split(' ')) {
      const state = existsSync(`/proc/${pid}/status`) ? readFileSync(`/proc/${pid}/status`, 'utf8') : 'State: gone'
      expect(state).toMatch(/State:\s+(Z|gone)/)
    }
  })
})
