/**
 * The algorithms offered to a host; the legacy ones (SHA-1, CBC) only on request (`legacy-algorithms`);
 * post-quantum key exchange first when the runtime can.
 */
import * as crypto from 'node:crypto'
import type { ConnectConfig } from 'ssh2'
import { hostKeyAlgorithms } from './host-keys'
import type { Host, Settings } from '../plan/settings'

/**
 * What `legacy-algorithms: true` adds for old switches and appliances: SHA-1 key exchange, host key
 * signatures and MACs, and CBC ciphers. Without it none of them is offered (ssh2 would offer ssh-rsa
 * and hmac-sha1 by default).
 */
const LEGACY = {
  kex: ['diffie-hellman-group14-sha1', 'diffie-hellman-group-exchange-sha1', 'diffie-hellman-group1-sha1'],
  serverHostKey: ['ssh-rsa', 'ssh-dss'],
  cipher: ['aes128-cbc', 'aes192-cbc', 'aes256-cbc', '3des-cbc'],
  hmac: ['hmac-sha1', 'hmac-sha1-etm@openssh.com']
} as const
const LEGACY_NAMES: ReadonlySet<string> = new Set(Object.values(LEGACY).flat())
export const isLegacy = (name: string | undefined): boolean => name !== undefined && LEGACY_NAMES.has(name)

/**
 * The hybrid ML-KEM-768 + X25519 key exchange (draft-ietf-sshm-mlkem-hybrid-kex), OpenSSH 10's default,
 * which the patched ssh2 carries (patches/): against "store now, decrypt later".
 */
export const POST_QUANTUM_KEX = 'mlkem768x25519-sha256'

/** Whether this runtime has ML-KEM (Node ≥ 24.7, OpenSSL 3.5), as the patched ssh2 decides it too. */
export const hasMlKem: boolean = (() => {
  if (typeof (crypto as { encapsulate?: unknown }).encapsulate !== 'function') return false
  try {
    crypto.generateKeyPairSync('ml-kem-768' as 'x25519')
    return true
  } catch {
    return false
  }
})()

/** What the log says of a connection's key exchange: nothing when post-quantum, else which and why not. */
export function keyExchangeNote(kex: string): string {
  if (kex === POST_QUANTUM_KEX || kex === '') return ''
  const why = hasMlKem ? `the server does not offer ${POST_QUANTUM_KEX}` : `Node ${process.version} has no ML-KEM, Node ≥ 24.7 has`
  return `; key exchange ${kex} (not post-quantum: ${why})`
}

/** A hop of a route (a bastion) that settled on legacy algorithms, and which. */
export interface LegacyHop {
  hop: string
  algorithms: string[]
}

/** The algorithms offered to `host`. */
export function algorithms(
  options: Pick<Settings, 'hostKeys'> & Partial<Pick<Settings, 'legacyAlgorithms'>>,
  host: Host
): ConnectConfig['algorithms'] {
  const hostKeys = hostKeyAlgorithms(options.hostKeys, host).filter((a) => options.legacyAlgorithms || !isLegacy(a))
  const kex = hasMlKem ? { prepend: [POST_QUANTUM_KEX] } : {}
  if (!options.legacyAlgorithms) return { serverHostKey: hostKeys, kex, hmac: { remove: [...LEGACY.hmac] } } as ConnectConfig['algorithms']
  return {
    serverHostKey: [...hostKeys, 'ssh-dss'],
    kex: { ...kex, append: [...LEGACY.kex] },
    cipher: { append: [...LEGACY.cipher] },
    hmac: { append: [...LEGACY.hmac] }
  } as ConnectConfig['algorithms']
}
