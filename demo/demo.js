'use strict'
/**
 * `npm run demo`: starts a local fleet of four SSH servers, runs the bundled action against it exactly
 * as a GitHub runner does (INPUT_* variables, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files), with one
 * host failing on purpose, then prints the log, the summary and the outputs.
 */
const { spawn } = require('node:child_process')
const { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join, resolve } = require('node:path')
const { startFleet } = require('./fleet')

const PLAN = `- name: Drain
  local: 'echo "load balancer - draining $FLEET_HOST:$FLEET_PORT (host $FLEET_HOST_INDEX)"'
- name: Ship
  upload:
    from: release
    to: releases/1.4.2
- name: Switch
  run: |
    echo "switching $DEMO_HOST to release $(cat releases/1.4.2/VERSION)"
    if [ "$DEMO_HOST" = web-3 ]; then
      echo "no space left on device: releases/1.4.2" >&2
      exit 28
    fi
    ln -sfn releases/1.4.2 current
- name: Reboot
  reboot:
    boot-id-command: cat "$HOME/.boot_id"
- name: Verify
  run: echo "$DEMO_HOST is back (boot id $(cut -c1-8 "$HOME/.boot_id")) and serves $(cat current/VERSION)"
`

function section(title) {
  process.stdout.write(`\n\x1b[1m── ${title} ${'─'.repeat(Math.max(0, 70 - title.length))}\x1b[0m\n`)
}

async function main() {
  const fleet = await startFleet(4)
  try {
    await demo(fleet)
  } finally {
    fleet.stop()
  }
}

async function demo(fleet) {
  const dir = mkdtempSync(join(tmpdir(), 'ssh-fleet-demo-run-'))
  const files = { output: join(dir, 'output'), summary: join(dir, 'summary') }
  // The runner's workspace, with the build the plan ships.
  const workspace = join(dir, 'workspace')
  mkdirSync(join(workspace, 'release', 'bin'), { recursive: true })
  writeFileSync(join(workspace, 'release', 'VERSION'), '1.4.2\n')
  writeFileSync(join(workspace, 'release', 'bin', 'app'), '#!/bin/sh\necho app 1.4.2\n', { mode: 0o755 })
  writeFileSync(files.output, '')
  writeFileSync(files.summary, '')
  const inputs = {
    hosts: fleet.hosts.map((h) => `deploy@127.0.0.1:${h.port}`).join('\n'),
    'private-key': fleet.privateKey,
    'known-hosts': fleet.hosts.map((h) => h.knownHost).join('\n'),
    steps: PLAN,
    concurrency: '2',
    'connect-retries': '1'
  }
  section('plan')
  for (const h of fleet.hosts) console.log(`${h.name} = deploy@127.0.0.1:${h.port}`)
  console.log(`concurrency ${inputs.concurrency}; web-3 fails on purpose; the others reboot (simulated)\n\n${PLAN}`)
  section('action log (dist/index.js, as the runner runs it)')
  const env = { ...process.env, GITHUB_OUTPUT: files.output, GITHUB_STEP_SUMMARY: files.summary, GITHUB_WORKSPACE: workspace }
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v
  const child = spawn(process.execPath, [resolve(__dirname, '../dist/index.js')], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  let log = ''
  child.stdout.on('data', (d) => {
    log += d
    // The runner hides the mask registrations; so does the demo.
    process.stdout.write(
      String(d)
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'))
        .join('\n')
    )
  })
  const code = await new Promise((r) => child.on('close', r))
  section('annotations')
  console.log(
    log
      .split('\n')
      .filter((l) => /^::(error|warning|notice)/.test(l))
      .join('\n')
  )
  section('job summary (GITHUB_STEP_SUMMARY)')
  console.log(readFileSync(files.summary, 'utf8'))
  section('outputs (GITHUB_OUTPUT)')
  const outputs = readFileSync(files.output, 'utf8')
  const results = /results<<(.+)\n([\s\S]*?)\n\1/.exec(outputs)
  const failed = /failed<<(.+)\n([\s\S]*?)\n\1/.exec(outputs)
  console.log(`results = ${results ? JSON.stringify(JSON.parse(results[2]), null, 2) : '(missing)'}`)
  console.log(`failed = ${failed ? failed[2] : '(missing)'}`)
  rmSync(dir, { recursive: true, force: true })
  const asExpected = code === 1 && failed && failed[2] === inputs.hosts.split('\n')[2]
  section(
    asExpected
      ? 'demo finished: 3 hosts drained, shipped, switched and rebooted; web-3 failed as planned; the action failed the job'
      : 'demo did not behave as expected'
  )
  process.exitCode = asExpected ? 0 : 1
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
