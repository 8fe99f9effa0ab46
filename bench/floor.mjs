// The floor of our stack: one ssh2 connection per host, p-limit, each step an exec, nothing else.
// Usage: node floor.mjs <hosts-json> <concurrency> <steps> <command>; FLOOR_STDIN, when set, is
// written to each exec's stdin (to run ssh-fleet's own remote command, whose script comes that way).
import { readFileSync } from 'node:fs'
import pLimit from 'p-limit'
import ssh2 from 'ssh2'

const [hostsFile, concurrency, steps, command] = process.argv.slice(2)
const { hosts, key } = JSON.parse(readFileSync(hostsFile, 'utf8'))
const limit = pLimit(Number(concurrency))

function exec(client) {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, ch) => {
      if (err) return reject(err)
      ch.on('data', () => {}).stderr.on('data', () => {})
      ch.on('exit', (code) => (code === 0 ? undefined : reject(new Error(`exit ${code}`))))
      ch.on('close', resolve)
      ch.end(process.env.FLOOR_STDIN)
    })
  })
}

let failed = 0
await Promise.all(
  hosts.map(({ user, port }) =>
    limit(
      () =>
        new Promise((resolve) => {
          const client = new ssh2.Client()
          client.on('error', () => {
            failed++
            resolve()
          })
          client.on('ready', async () => {
            try {
              for (let i = 0; i < Number(steps); i++) await exec(client)
            } catch {
              failed++
            }
            client.end()
            resolve()
          })
          client.connect({ host: '127.0.0.1', port, username: user, privateKey: key, hostVerifier: () => true })
          client.setNoDelay(true) // as ssh-fleet does: without it Nagle + delayed ACK cost ~40 ms per round trip
        })
    )
  )
)
process.exitCode = failed ? 1 : 0
