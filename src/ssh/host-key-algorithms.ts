import type { ServerHostKeyAlgorithm } from 'ssh2';

const DEFAULT_HOST_KEY_ALGOS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/**
 * Host key algorithms in the order to offer: those whose key type known_hosts already
 * holds for this host first (as OpenSSH does), so a host known by its RSA key is not
 * rejected for showing an unknown ed25519 key.
 */
export function preferredHostKeyAlgorithms(knownTypes: string[]): ServerHostKeyAlgorithm[] {
  const first: ServerHostKeyAlgorithm[] = [];
  for (const t of knownTypes) {
    const algos = (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]) as ServerHostKeyAlgorithm[];
    for (const a of algos) if (DEFAULT_HOST_KEY_ALGOS.includes(a) && !first.includes(a)) first.push(a);
  }
  return [...first, ...DEFAULT_HOST_KEY_ALGOS.filter((a) => !first.includes(a))];
}
