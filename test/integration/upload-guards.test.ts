/**
 * What an upload must never do, however it is led there: send a runner file outside the workspace
 * (a source swapped for a link after the plan was read), die or balloon on a host's flood of an
 * answer, or mirror with `delete: true` over the login home (any spelling of it).
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { utils } from 'ssh2'
import { describe, expect, test } from 'vitest'
import { inline } from '../../src/report/markdown'
import { hostResult, runAction } from '../helpers/action'
import { useSshd, useWorkspace } from '../helpers/fixtures'
import { startSsh2Server } from '../helpers/ssh2-server'
import { hostName, isRoot, type Sshd } from '../helpers/sshd'

const workspace = useWorkspace('upload-guards')
const env = { GITHUB_WORKSPACE: workspace }

/** Every file's bytes below `dir`, hidden and temporary ones included. */
function allBytes(dir: string): string {
  if (!existsSync(dir)) return ''
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'))
    .join('\n')
}

describe('upload sources are opened through the workspace', () => {
  let sshd: Sshd
  useSshd({ ports: 1 }, (started) => (sshd = started))

  test('a source swapped for a link to a file outside the workspace after the plan was read is refused, naming it; its bytes reach no host', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'ssh-fleet-outside-'))
    const secret = join(outside, 'secret.txt')
    writeFileSync(secret, 'OUTSIDE-BYTES-7f3a\n')
    const app = join(workspace, 'app')
    mkdirSync(app, { recursive: true })
    writeFileSync(join(app, 'x.txt'), 'inside\n')
    writeFileSync(join(app, 'y.txt'), 'inside too\n')
    const to = join(sshd.shared, 'swapped')
    try {
      const run = await runAction(
        {
          hosts: hostName(sshd, sshd.ports[0]),
          'private-key': sshd.clientKey,
          'known-hosts': sshd.knownHosts,
          // The plan reads app/ (two regular files); the local step then swaps one for a link out.
          steps: `- local: ln -sf ${secret} ${join(app, 'x.txt')}\n- upload: { from: app, to: ${to} }`
        },
        { env }
      )
      const r = hostResult(run, hostName(sshd, sshd.ports[0]))
      expect(r.status).toBe('failed')
      expect(r.steps[1].status).toBe('failed')
      expect(r.error).toMatch(/x\.txt/)
      expect(r.error).toContain(`symbolic link to ${secret}`)
      expect(allBytes(to)).not.toContain('OUTSIDE-BYTES')
    } finally {
      rmSync(outside, { recursive: true, force: true })
    }
  })
})

describe('exec answers are bounded', () => {
  test('a host without SFTP that answers the upload commands with 256 MB on stderr: the action reports, memory stays flat', async () => {
    // ssh2's Server: no real sshd floods an answer to mkdir on cue.
    const block = Buffer.alloc(1024 * 1024, 'noise line\n')
    const server = await startSsh2Server((session) => {
      session.on('subsystem', (_accept, reject) => reject())
      session.on('sftp', (_accept, reject) => reject())
      session.on('exec', (accept) => {
        const channel = accept()
        channel.on('data', () => {})
        let left = 256
        const flood = (): void => {
          while (left > 0) {
            left--
            if (!channel.stderr.write(block)) return void channel.stderr.once('drain', flood)
          }
          channel.exit(1)
          channel.end()
        }
        flood()
      })
    })
    const app = join(workspace, 'flooded')
    mkdirSync(app, { recursive: true })
    writeFileSync(join(app, 'a.txt'), 'a\n')
    try {
      const run = await runAction(
        {
          hosts: `u@127.0.0.1:${server.port}`,
          password: 'any-password',
          'known-hosts': server.known,
          steps: '- upload: { from: flooded, to: /srv/app }'
        },
        { env, rusage: true, timeoutMs: 120_000 }
      )
      const rssMb = (run.usage as { maxRssKb: number }).maxRssKb / 1024
      console.log(`256 MB exec answer: peak RSS ${rssMb.toFixed(0)} MB, ${run.durationMs} ms`)
      expect(run.code).toBe(1)
      expect(run.results).toHaveLength(1)
      expect(run.results[0].status).toBe('failed')
      expect(run.results[0].error).toMatch(
        // The first command is the probe that follows a failed SFTP start.
        /^could not start SFTP: Unable to start subsystem: sftp, nor run commands over exec: noise line \(\d+ more bytes of stderr dropped\)$/
      )
      expect(run.summary).toContain(inline(`127.0.0.1:${server.port}`))
      // Below the answer's 256 MB, so an answer held whole fails; above Node 24's lag in collecting ssh2's
      // spent buffers (peaks of 161 and 165 MB seen there, ~110 MB on Node 20).
      expect(rssMb).toBeLessThan(224)
    } finally {
      server.close()
    }
  })

  test('a tree listing past its cap fails the mirror, naming the cap, and nothing is removed', async () => {
    // ssh2's Server: a real host cannot be made to list 20 MB of entries on cue.
    const commands: string[] = []
    const entry = Buffer.from(`f./${'x'.repeat(120)}\0`)
    const listing = Buffer.concat(Array.from({ length: 8192 }, () => entry)) // 1 MiB of entries
    const server = await startSsh2Server((session) => {
      session.on('subsystem', (_accept, reject) => reject())
      session.on('sftp', (_accept, reject) => reject())
      session.on('exec', (accept, _reject, info) => {
        commands.push(info.command)
        const channel = accept()
        channel.on('data', () => {})
        channel.on('end', () => {
          // The answer marker the command would print (ssh-fleet frames every exec answer with one).
          const token = /ssh-fleet-answer- ([0-9a-f]{16})/.exec(info.command)?.[1]
          channel.write(`ssh-fleet-answer-${token}\n`)
          if (info.command.includes('pwd -P')) channel.write(info.command.includes('/srv/app') ? '/srv/app\n' : '/home/u\n')
          if (info.command.includes('find .')) for (let i = 0; i < 20; i++) channel.write(listing)
          channel.exit(0)
          channel.end()
        })
      })
    })
    const app = join(workspace, 'listed')
    mkdirSync(app, { recursive: true })
    writeFileSync(join(app, 'a.txt'), 'a\n')
    try {
      const run = await runAction(
        {
          hosts: `u@127.0.0.1:${server.port}`,
          password: 'any-password',
          'known-hosts': server.known,
          steps: '- upload: { from: listed, to: /srv/app, delete: true }'
        },
        { env }
      )
      expect(run.results[0].status).toBe('failed')
      expect(run.results[0].error).toBe(
        'upload failed: cannot list /srv/app: the listing is larger than 8388608 bytes, the most ssh-fleet reads'
      )
      expect(commands.some((c) => c.includes('find .'))).toBe(true)
      expect(commands.filter((c) => c.includes('rm -f') && !c.includes('cat >'))).toEqual([])
    } finally {
      server.close()
    }
  })
})

describe('an exec upload stops with its step', () => {
  let exec: Sshd
  useSshd({ ports: 1, config: ['Subsystem sftp /nonexistent/sftp-server'] }, (started) => (exec = started))

  test('timed out with continue-on-error: no file lands after the step failed', async () => {
    const app = join(workspace, 'exec-stops')
    mkdirSync(app, { recursive: true })
    for (let i = 0; i < 400; i++) writeFileSync(join(app, `f${i}.txt`), `${i}\n`)
    const dir = join(exec.shared, `exec-stops-${Math.random().toString(36).slice(2)}`)
    mkdirSync(dir, { mode: 0o777 })
    chmodSync(dir, 0o777)
    const steps = [
      `- upload: { from: exec-stops, to: ${dir} }`,
      '  timeout: 1s',
      '  continue-on-error: true',
      `- run: ls -A ${dir} | wc -l > ${dir}.before; sleep 3; ls -A ${dir} | wc -l > ${dir}.after`
    ].join('\n')
    const run = await runAction(
      { hosts: hostName(exec, exec.ports[0]), 'private-key': exec.clientKey, 'known-hosts': exec.knownHosts, steps },
      { env }
    )
    const [upload, after] = hostResult(run, hostName(exec, exec.ports[0])).steps
    expect(upload.error, run.stdout).toMatch(/^upload failed: timed out after 1s/)
    expect(after.status).toBe('success')
    const before = Number(readFileSync(`${dir}.before`, 'utf8'))
    expect(before).toBeLessThan(400)
    expect(Number(readFileSync(`${dir}.after`, 'utf8'))).toBe(before)
  })
})

describe('SFTP answers are bounded', () => {
  test('a comparison listing of huge names stops at its byte cap: each file is looked up alone, memory stays flat', async () => {
    // ssh2's Server: no real sftp-server lists 30 KB names without end.
    const { STATUS_CODE } = utils.sftp
    let readdirs = 0
    const server = await startSsh2Server((session) => {
      session.on('sftp', (accept) => {
        const sftp = accept()
        const ok = (reqid: number): void => void sftp.status(reqid, STATUS_CODE.OK)
        for (const op of ['MKDIR', 'SETSTAT', 'FSETSTAT', 'WRITE', 'CLOSE', 'REMOVE', 'RENAME'] as const) sftp.on(op, ok)
        sftp.on('LSTAT', (reqid: number) => sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE))
        sftp.on('STAT', (reqid: number) => sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE))
        sftp.on('OPEN', (reqid: number) => sftp.handle(reqid, Buffer.from('f')))
        sftp.on('OPENDIR', (reqid: number) => sftp.handle(reqid, Buffer.from('d')))
        sftp.on('READDIR', (reqid: number) => {
          readdirs++
          const attrs = { mode: 0o100644, uid: 0, gid: 0, size: 1, atime: 0, mtime: 0 }
          sftp.name(
            reqid,
            Array.from({ length: 4 }, (_, i) => ({ filename: `${'n'.repeat(30_000)}${readdirs}-${i}`, longname: 'x', attrs }))
          )
        })
      })
    })
    const app = join(workspace, 'huge-names')
    mkdirSync(app, { recursive: true })
    for (let i = 0; i < 20; i++) writeFileSync(join(app, `f${i}.txt`), `${i}\n`)
    try {
      const run = await runAction(
        {
          hosts: `u@127.0.0.1:${server.port}`,
          password: 'any-password',
          'known-hosts': server.known,
          steps: '- upload: { from: huge-names, to: /srv/app }\n  timeout: 60s'
        },
        { env, rusage: true, timeoutMs: 120_000 }
      )
      const rssMb = (run.usage as { maxRssKb: number }).maxRssKb / 1024
      console.log(`30 KB names listing: peak RSS ${rssMb.toFixed(0)} MB, ${readdirs} READDIRs, ${run.durationMs} ms`)
      expect(run.results[0].steps[0], run.stdout).toMatchObject({ status: 'success', files: 20, unchanged: 0 })
      // 20 MB of names at 120 KB a batch: about 170 batches, then lookups one by one.
      expect(readdirs).toBeLessThan(400)
      expect(rssMb).toBeLessThan(160)
    } finally {
      server.close()
    }
  })
})

/** A user of its own, with its authorized_keys in its home (the file a wiped home loses). */
const WIPE_USER = 'sfl-wipe'
const WIPE_HOME = `/home/${WIPE_USER}`

describe.runIf(isRoot)('delete: true never mirrors over the login home', () => {
  const setup = (dir: string): void => {
    try {
      execFileSync('id', [WIPE_USER], { stdio: 'ignore' })
    } catch {
      execFileSync('useradd', ['-m', '-s', '/bin/sh', WIPE_USER], { stdio: 'ignore' })
    }
    execFileSync('usermod', ['-p', '*', WIPE_USER], { stdio: 'ignore' })
    mkdirSync(join(WIPE_HOME, '.ssh'), { recursive: true })
    const keys = join(WIPE_HOME, '.ssh/authorized_keys')
    const have = existsSync(keys) ? readFileSync(keys, 'utf8') : ''
    writeFileSync(keys, have + readFileSync(join(dir, 'client.pub'), 'utf8'))
    writeFileSync(join(WIPE_HOME, 'keep.txt'), 'keep\n')
    for (const left of ['index.html', 'site']) rmSync(join(WIPE_HOME, left), { recursive: true, force: true })
    execFileSync('chown', ['-R', `${WIPE_USER}:${WIPE_USER}`, WIPE_HOME])
  }
  const config = [`AllowUsers ${WIPE_USER}`, 'AuthorizedKeysFile .ssh/authorized_keys']
  let sftp: Sshd
  let exec: Sshd
  useSshd({ ports: 1, config, prepare: setup }, (started) => (sftp = started))
  // No SFTP server: the upload goes over exec channels, which resolve paths with the host's shell.
  useSshd({ ports: 1, config: [...config, 'Subsystem sftp /nonexistent/sftp-server'], prepare: setup }, (started) => (exec = started))

  test.each(['sftp', 'exec'] as const)('over %s: each spelling of the home is refused, nothing removed', async (transport) => {
    const sshd = transport === 'sftp' ? sftp : exec
    const link = join(sshd.shared, 'home-link')
    if (!existsSync(link)) symlinkSync(WIPE_HOME, link)
    const src = join(workspace, 'site')
    mkdirSync(src, { recursive: true })
    writeFileSync(join(src, 'index.html'), 'hi\n')
    // Every spelling of the home the plan can see (`~/.`, `/home//u`, `/home/u/../u`…) is an input error
    // already (plan.test.ts); what only the host knows is left: a link to the home, and that link's `.`.
    const spellings = [link, `${link}/.`, `${link}//`]
    const steps = spellings.map((to) => `- upload: { from: site, to: "${to}", delete: true }\n  continue-on-error: true`).join('\n')
    const host = `${WIPE_USER}@127.0.0.1:${sshd.ports[0]}`
    const run = await runAction({ hosts: host, 'private-key': sshd.clientKey, 'known-hosts': sshd.knownHosts, steps }, { env })
    const r = hostResult(run, host)
    expect(r.steps).toHaveLength(spellings.length)
    for (const step of r.steps) {
      expect(step.status).toBe('failed')
      expect(step.error, step.error).toContain(`the login home (${WIPE_HOME}); nothing was removed`)
    }
    expect(run.stdout.includes('no SFTP on this host')).toBe(transport === 'exec')
    expect(readFileSync(join(WIPE_HOME, '.ssh/authorized_keys'), 'utf8')).toContain(
      readFileSync(join(sshd.dir, 'client.pub'), 'utf8').trim()
    )
    expect(readFileSync(join(WIPE_HOME, 'keep.txt'), 'utf8')).toBe('keep\n')
    expect(existsSync(join(WIPE_HOME, 'index.html'))).toBe(false)
  })

  test('a directory that holds the home is refused too; a directory beside it mirrors', async () => {
    const host = `${WIPE_USER}@127.0.0.1:${sftp.ports[0]}`
    // `/home` itself is an input error (plan.test.ts); a link to it only the host can resolve.
    const homes = join(sftp.shared, 'homes-link')
    if (!existsSync(homes)) symlinkSync('/home', homes)
    const beside = join(WIPE_HOME, 'site')
    mkdirSync(beside, { recursive: true })
    writeFileSync(join(beside, 'stale.txt'), 'x')
    execFileSync('chown', ['-R', `${WIPE_USER}:${WIPE_USER}`, beside])
    const steps = `- upload: { from: site, to: ${homes}, delete: true }\n  continue-on-error: true\n- upload: { from: site, to: site, delete: true }`
    const run = await runAction({ hosts: host, 'private-key': sftp.clientKey, 'known-hosts': sftp.knownHosts, steps }, { env })
    const r = hostResult(run, host)
    expect(r.steps[0]).toMatchObject({ status: 'failed' })
    expect(r.steps[0].error).toContain(`/home, which holds the login home (${WIPE_HOME})`)
    expect(r.steps[1]).toMatchObject({ status: 'success' })
    expect(readdirSync(beside)).toEqual(['index.html'])
  })

  test.each(['sftp', 'exec'] as const)(
    'over %s: a link to ~/.ssh (or into it) is refused, authorized_keys intact; a link to / or a top-level directory too',
    async (transport) => {
      const sshd = transport === 'sftp' ? sftp : exec
      // The plan refuses every spelling of .ssh and of a top-level directory; a link only the host resolves.
      const keys = join(sshd.shared, 'keys-link')
      const inside = join(sshd.shared, 'keys-inside-link')
      const top = join(sshd.shared, 'top-link')
      const root = join(sshd.shared, 'root-link')
      rmSync(join(WIPE_HOME, '.ssh/id_new.pub'), { force: true }) // left by a run of the old code
      mkdirSync(join(WIPE_HOME, '.ssh/sub'), { recursive: true })
      execFileSync('chown', ['-R', `${WIPE_USER}:${WIPE_USER}`, join(WIPE_HOME, '.ssh')])
      for (const [link, target] of [
        [keys, join(WIPE_HOME, '.ssh')],
        [inside, join(WIPE_HOME, '.ssh/sub')],
        [top, '/opt'],
        [root, '/']
      ])
        if (!existsSync(link)) symlinkSync(target, link)
      const src = join(workspace, 'keys')
      mkdirSync(src, { recursive: true })
      writeFileSync(join(src, 'id_new.pub'), 'ssh-ed25519 AAAA new\n')
      const links = [keys, `${keys}/.`, inside, top, root]
      const steps = links.map((to) => `- upload: { from: keys, to: "${to}", delete: true }\n  continue-on-error: true`).join('\n')
      const host = `${WIPE_USER}@127.0.0.1:${sshd.ports[0]}`
      const run = await runAction({ hosts: host, 'private-key': sshd.clientKey, 'known-hosts': sshd.knownHosts, steps }, { env })
      const r = hostResult(run, host)
      expect(r.steps.map((s: { status: string }) => s.status)).toEqual(links.map(() => 'failed'))
      for (const step of r.steps.slice(0, 3))
        expect(step.error).toMatch(/\.ssh(\/sub)?, the ssh keys' directory or inside it; nothing was removed$/)
      expect(r.steps[3].error).toContain('/opt, a top-level directory; nothing was removed')
      expect(r.steps[4].error).toContain('the root directory /; nothing was removed')
      expect(readFileSync(join(WIPE_HOME, '.ssh/authorized_keys'), 'utf8')).toContain(
        readFileSync(join(sshd.dir, 'client.pub'), 'utf8').trim()
      )
      expect(existsSync(join(WIPE_HOME, '.ssh/id_new.pub'))).toBe(false)
    }
  )
})
