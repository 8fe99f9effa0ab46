/**
 * Keys and certificates made the way a CA makes them, with ssh-keygen (-s to sign), in a folder of
 * the test's own: the code under test must read what OpenSSH writes.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface KeyFiles {
  /** The private key file (its public half beside it, `.pub`). */
  path: string
  /** The `.pub` line: `type base64 comment`. */
  publicLine: string
  /** The public key blob. */
  blob: Buffer
  privateText: string
}

export class CertificateLab {
  constructor(readonly dir: string) {}

  /** A new key pair, e.g. key('ca', 'ed25519') or key('ca', 'rsa', 2048). */
  key(name: string, type = 'ed25519', bits?: number): KeyFiles {
    const path = join(this.dir, name)
    execFileSync('ssh-keygen', ['-q', '-N', '', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-C', name, '-f', path], {
      stdio: 'ignore'
    })
    return this.read(path)
  }

  read(path: string): KeyFiles {
    const publicLine = readFileSync(`${path}.pub`, 'utf8').trim()
    return { path, publicLine, blob: Buffer.from(publicLine.split(' ')[1], 'base64'), privateText: readFileSync(path, 'utf8') }
  }

  /**
   * Signs `key` with `ca` (ssh-keygen -s) and returns the `-cert.pub` text. `args` as ssh-keygen takes
   * them: `-h` for a host certificate, `-n` principals, `-V` validity, `-I` key id, `-z` serial.
   */
  sign(ca: KeyFiles, key: KeyFiles, args: string[]): string {
    execFileSync('ssh-keygen', ['-q', '-s', ca.path, ...(args.includes('-I') ? [] : ['-I', 'test']), ...args, `${key.path}.pub`], {
      stdio: 'ignore'
    })
    return readFileSync(`${key.path}-cert.pub`, 'utf8')
  }
}
