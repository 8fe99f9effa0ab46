'use strict'
/**
 * Starts the demo fleet and keeps it running, for workflows that test the action against real SSH
 * connections on any OS (the end-to-end job on Windows and macOS). Writes `hosts`, `key`, `known`
 * and `homes` (each host's directory, one a line) to $GITHUB_OUTPUT, or prints them, then waits.
 *   node demo/serve.js [count]
 */
const { appendFileSync } = require('node:fs')
const { startFleet } = require('./fleet')

startFleet(Number(process.argv[2] || 2)).then((fleet) => {
  const delimiter = `EOF_${Date.now()}`
  const block = (name, value) => `${name}<<${delimiter}\n${value}\n${delimiter}\n`
  const text = [
    block('hosts', fleet.hosts.map((h) => `deploy@127.0.0.1:${h.port}`).join('\n')),
    block('key', fleet.privateKey.trim()),
    block('known', fleet.hosts.map((h) => h.knownHost).join('\n')),
    block('homes', fleet.hosts.map((h) => h.home).join('\n'))
  ].join('')
  if (process.env.GITHUB_OUTPUT) appendFileSync(process.env.GITHUB_OUTPUT, text)
  else process.stdout.write(text)
  console.log(`demo fleet of ${fleet.hosts.length} hosts is up`)
  process.on('SIGTERM', () => {
    fleet.stop()
    process.exit(0)
  })
})
