/**
 * An OpenSSH 10 sshd for integration tests: the sshd fixture, run inside a Debian 13 (trixie) root made with
 * debootstrap (test/prerequisites.sh makes it). It runs in a mount namespace of its own, chrooted, with the
 * machine's /proc, /dev, /tmp (the fixture's files) and /home (the test user's) bound in, and the test
 * user copied into the root's account files. PerSourcePenalties is on, as OpenSSH 10 ships it.
 */
import { execFileSync } from 'node:child_process'
import { appendFileSync, existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ensureTestUser, isRoot, startSshd, type Sshd, type SshdOptions } from './sshd'

/** Where test/prerequisites.sh puts the Debian 13 root (outside the clone: it is made once per machine). */
export const TRIXIE_ROOT = process.env.SSH_FLEET_TRIXIE_ROOT ?? '/var/cache/ssh-fleet/trixie'
/** OpenSSH 10 tests need root and the Debian 13 root; without them they are skipped, and say so. */
export const canRunOpenssh10 = isRoot && existsSync(join(TRIXIE_ROOT, 'usr/sbin/sshd'))

/** The version line the root's sshd prints (`OpenSSH_10.0p2 Debian-7`, …). */
export function openssh10Version(): string {
  return execFileSync('chroot', [TRIXIE_ROOT, '/usr/sbin/sshd', '-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    .toString()
    .trim()
}

/** The machine's entry for `user` copied into the root's passwd, shadow and group files (once). */
function copyUser(user: string): void {
  for (const [db, file] of [
    ['passwd', 'etc/passwd'],
    ['shadow', 'etc/shadow'],
    ['group', 'etc/group']
  ]) {
    const path = join(TRIXIE_ROOT, file)
    if (
      readFileSync(path, 'utf8')
        .split('\n')
        .some((l) => l.startsWith(`${user}:`))
    )
      continue
    appendFileSync(path, execFileSync('getent', [db, user], { encoding: 'utf8' }))
  }
}

const MOUNTS = ['proc', 'dev', 'tmp', 'home'].map((d) => `mount --bind /${d} "$root/${d}"`).join(' && ')

export async function startOpenssh10(options: Omit<SshdOptions, 'wrap'> = {}): Promise<Sshd> {
  if (!canRunOpenssh10)
    throw new Error(`OpenSSH 10 tests need root and a Debian 13 root at ${TRIXIE_ROOT} (test/prerequisites.sh makes it)`)
  copyUser(ensureTestUser())
  return startSshd({
    ...options,
    wrap: (argv) => [
      'unshare',
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      `root="$1"; shift; mkdir -p "$root/run/sshd" && ${MOUNTS} && exec chroot "$root" "$@"`,
      'sh',
      TRIXIE_ROOT,
      ...argv
    ]
  })
}
