'use strict'
/**
 * A local fleet of SSH servers built on ssh2's Server: each host runs the commands it is sent on
 * this machine with `sh`, in its own temp directory, with DEMO_HOST set to its name. It needs nothing
 * installed and listens on 127.0.0.1 only, accepting just the key it was started with.
 */
const { spawn } = require('node:child_process')
const { timingSafeEqual } = require('node:crypto')
const { mkdtempSync, rmSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { Server, utils } = require('ssh2')

function startHost(name, clientPublicKey) {
  const hostKey = utils.generateKeyPairSync('ed25519')
  const allowed = utils.parseKey(clientPublicKey)
  const home = mkdtempSync(join(tmpdir(), `ssh-fleet-demo-${name}-`))
  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
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
      session.on('exec', (accept, _reject, info) => {
        const channel = accept()
        child = spawn('sh', ['-c', info.command], { cwd: home, env: { ...process.env, DEMO_HOST: name, HOME: home } })
        channel.pipe(child.stdin).on('error', () => {})
        child.stdout.pipe(channel, { end: false })
        child.stderr.pipe(channel.stderr, { end: false })
        child.on('close', (code, signal) => {
          if (signal) channel.exit(signal.replace(/^SIG/, ''), false, '')
          else channel.exit(code)
          channel.end()
        })
      })
    })
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = server.address().port
      const pub = utils.parseKey(hostKey.public)
      resolve({
        name,
        port,
        knownHost: `[127.0.0.1]:${port} ${pub.type} ${pub.getPublicSSH().toString('base64')}`,
        stop: () => {
          server.close()
          rmSync(home, { recursive: true, force: true })
        }
      })
    })
  })
}

/** Starts `count` hosts named web-1…web-N; returns them with the client key that may log in. */
async function startFleet(count) {
  const client = utils.generateKeyPairSync('ed25519')
  const hosts = []
  for (let i = 1; i <= count; i++) hosts.push(await startHost(`web-${i}`, client.public))
  return { hosts, privateKey: client.private, stop: () => hosts.forEach((h) => h.stop()) }
}

module.exports = { startFleet }
