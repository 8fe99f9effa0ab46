'use strict'
/**
 * A local fleet of SSH servers built on ssh2's Server: each host runs the commands it is sent on
 * this machine with `sh`, in its own temp directory, with DEMO_HOST set to its name. It needs nothing
 * installed and listens on 127.0.0.1 only, accepting just the key it was started with.
 *
 * Hosts can "reboot": `shutdown` and `sudo` on their PATH ask the host to; it keeps answering for a
 * moment (old boot id in ~/.boot_id), then drops every connection, refuses connections for a moment,
 * and comes back on the same port with a new boot id.
 */
const { spawn } = require('node:child_process')
const { randomUUID, timingSafeEqual } = require('node:crypto')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const fs = require('node:fs')
const { Server, utils } = require('ssh2')

const { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } = fs
const { OPEN_MODE, STATUS_CODE } = utils.sftp

/**
 * Just enough of an SFTP server for uploads into the host's directory: open/write/close,
 * chmod, mkdir, stat, rename, remove. Paths are relative to the host's home.
 */
function serveSftp(sftp, home) {
  // ssh2's Server does not answer a client's channel close for SFTP by itself: answer it, as sshd does.
  sftp.on('end', () => sftp.end())
  const handles = new Map()
  let next = 0
  const path = (p) => (p.startsWith('/') ? p : join(home, p))
  const ok = (id) => sftp.status(id, STATUS_CODE.OK)
  const fail = (id, err) =>
    sftp.status(id, err && err.code === 'ENOENT' ? STATUS_CODE.NO_SUCH_FILE : STATUS_CODE.FAILURE, err ? err.message : '')
  const attrs = (st) => ({
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000)
  })
  sftp.on('OPEN', (id, filename, flags, a) => {
    if (!(flags & OPEN_MODE.WRITE)) return sftp.status(id, STATUS_CODE.OP_UNSUPPORTED)
    fs.open(path(filename), 'w', a.mode ?? 0o644, (err, fd) => {
      if (err) return fail(id, err)
      const handle = Buffer.alloc(4)
      handle.writeUInt32BE(next++)
      handles.set(handle.toString('hex'), fd)
      sftp.handle(id, handle)
    })
  })
  sftp.on('WRITE', (id, handle, offset, data) => {
    fs.write(handles.get(handle.toString('hex')), data, 0, data.length, offset, (err) => (err ? fail(id, err) : ok(id)))
  })
  sftp.on('CLOSE', (id, handle) => {
    const fd = handles.get(handle.toString('hex'))
    handles.delete(handle.toString('hex'))
    fs.close(fd, (err) => (err ? fail(id, err) : ok(id)))
  })
  sftp.on('FSETSTAT', (id, handle, a) => {
    if (a.mode === undefined) return ok(id)
    fs.fchmod(handles.get(handle.toString('hex')), a.mode, (err) => (err ? fail(id, err) : ok(id)))
  })
  sftp.on('SETSTAT', (id, p, a) => {
    if (a.mode === undefined) return ok(id)
    fs.chmod(path(p), a.mode, (err) => (err ? fail(id, err) : ok(id)))
  })
  sftp.on('MKDIR', (id, p) => fs.mkdir(path(p), (err) => (err ? fail(id, err) : ok(id))))
  for (const op of ['STAT', 'LSTAT'])
    sftp.on(op, (id, p) => fs.stat(path(p), (err, st) => (err ? fail(id, err) : sftp.attrs(id, attrs(st)))))
  sftp.on('RENAME', (id, from, to) => fs.rename(path(from), path(to), (err) => (err ? fail(id, err) : ok(id))))
  sftp.on('REMOVE', (id, p) => fs.unlink(path(p), (err) => (err ? fail(id, err) : ok(id))))
  sftp.on('EXTENDED', (id) => sftp.status(id, STATUS_CODE.OP_UNSUPPORTED))
}

const LINGER_MS = 1500
const DOWN_MS = 1500

function fakeCommands(home) {
  const bin = join(home, '.bin')
  mkdirSync(bin)
  const scripts = {
    shutdown: `#!/bin/sh\necho "$DEMO_HOST: rebooting ($*)"\ntouch "$HOME/.reboot-requested"\n`,
    sudo: '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n'
  }
  for (const [name, text] of Object.entries(scripts)) {
    writeFileSync(join(bin, name), text)
    chmodSync(join(bin, name), 0o755)
  }
  return bin
}

/**
 * An ed25519 key pair that ssh2 can read back. ssh2 1.17's generator sometimes writes a public key
 * one byte short (a leading zero dropped: about 4 in 1000 keys measured here), which its own parser
 * then refuses; draw again when that happens.
 */
function generateKey() {
  for (;;) {
    const pair = utils.generateKeyPairSync('ed25519')
    if (!(utils.parseKey(pair.private) instanceof Error)) return pair
  }
}

function startHost(name, clientPublicKey) {
  const hostKey = generateKey()
  const allowed = utils.parseKey(clientPublicKey)
  const home = mkdtempSync(join(tmpdir(), `ssh-fleet-demo-${name}-`))
  const bin = fakeCommands(home)
  writeFileSync(join(home, '.boot_id'), `${randomUUID()}\n`)
  const clients = new Set()
  const children = new Set()
  let port
  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    client.setNoDelay(true) // as sshd does; Nagle would slow every small SFTP reply
    clients.add(client)
    client.on('close', () => clients.delete(client))
    client.on('error', () => {})
    client.on('authentication', (ctx) => {
      const key = ctx.method === 'publickey' && ctx.key
      const matches = key && key.algo === allowed.type && timingSafeEqual(Buffer.from(key.data), allowed.getPublicSSH())
      if (!matches || (ctx.signature && !allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo))) return ctx.reject(['publickey'])
      ctx.accept()
    })
    client.on('session', (acceptSession) => {
      const session = acceptSession()
      let child
      session.on('signal', (accept, _reject, info) => {
        if (accept) accept()
        if (child) child.kill(`SIG${info.name}`)
      })
      session.on('sftp', (accept) => serveSftp(accept(), home))
      session.on('exec', (accept, _reject, info) => {
        const channel = accept()
        child = spawn('sh', ['-c', info.command], {
          cwd: home,
          env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, DEMO_HOST: name, HOME: home }
        })
        children.add(child)
        channel.pipe(child.stdin).on('error', () => {})
        child.stdout.pipe(channel, { end: false })
        child.stderr.pipe(channel.stderr, { end: false })
        child.on('close', (code, signal) => {
          children.delete(child)
          if (signal) channel.exit(signal.replace(/^SIG/, ''), false, '')
          else channel.exit(code)
          channel.end()
        })
      })
    })
  })
  server.on('error', () => {})
  const reboots = setInterval(() => {
    const request = join(home, '.reboot-requested')
    if (!existsSync(request)) return
    rmSync(request)
    setTimeout(() => {
      server.close()
      for (const c of children) c.kill('SIGKILL')
      for (const c of clients) c.end()
      setTimeout(() => {
        writeFileSync(join(home, '.boot_id'), `${randomUUID()}\n`)
        server.listen(port, '127.0.0.1')
      }, DOWN_MS)
    }, LINGER_MS)
  }, 50)
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      port = server.address().port
      const pub = utils.parseKey(hostKey.public)
      resolve({
        name,
        port,
        home,
        knownHost: `[127.0.0.1]:${port} ${pub.type} ${pub.getPublicSSH().toString('base64')}`,
        stop: () => {
          clearInterval(reboots)
          server.close()
          for (const c of clients) c.end()
          rmSync(home, { recursive: true, force: true })
        }
      })
    })
  })
}

/** Starts `count` hosts named web-1…web-N; returns them with the client key that may log in. */
async function startFleet(count) {
  const client = generateKey()
  const hosts = []
  for (let i = 1; i <= count; i++) hosts.push(await startHost(`web-${i}`, client.public))
  return { hosts, privateKey: client.private, stop: () => hosts.forEach((h) => h.stop()) }
}

module.exports = { startFleet, generateKey }
