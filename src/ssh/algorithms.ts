/** The algorithms offered to a host; the legacy ones (SHA-1, CBC) only on request (`legacy-algorithms`). */
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
  if (!options.legacyAlgorithms) return { serverHostKey: hostKeys, hmac: { remove: [...LEGACY.hmac] } } as ConnectConfig['algorithms']
  return {
    serverHostKey: [...hostKeys, 'ssh-dss'],
    kex: { append: [...LEGACY.kex] },
    cipher: { append: [...LEGACY.cipher] },
    hmac: { append: [...LEGACY.hmac] }
  } as ConnectConfig['algorithms']
}
