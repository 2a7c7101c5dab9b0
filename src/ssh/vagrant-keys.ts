/**
 * Vagrant's published insecure key pairs (RSA and ed25519), which boxes made the Vagrant
 * way accept for user `vagrant` until their first `up` replaces them. They are data,
 * shipped in boxes/common/vagrant-keys/ (where its README says they come from), found
 * relative to this module: src/ssh/, dist/ssh/ and dist/_chunks/ are all two levels
 * below the package root.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { fingerprintOfPublicLine } from './keys.js';

export type InsecureKeyType = 'ed25519' | 'rsa';

export interface InsecureKey {
  type: InsecureKeyType;
  /** How messages name it: "Vagrant's insecure ed25519 key". */
  label: string;
  /** The private key's text. */
  privateKey: string;
  /** The public key line. */
  publicKey: string;
  /** `SHA256:…`. */
  fingerprint: string;
}

/** The folder that holds the key files. */
export function vagrantKeysDir(): string {
  return fileURLToPath(new URL('../../boxes/common/vagrant-keys/', import.meta.url));
}

/** ed25519 first: the cheaper signature, and the one Vagrant 2.3.8+ boxes carry. */
const TYPES: readonly InsecureKeyType[] = ['ed25519', 'rsa'];

let loaded: Promise<InsecureKey[]> | undefined;

/** Both insecure key pairs, read once per process. */
export function vagrantInsecureKeys(): Promise<InsecureKey[]> {
  loaded ??= Promise.all(
    TYPES.map(async (type) => {
      const dir = vagrantKeysDir();
      const [privateKey, publicKey] = await Promise.all([
        readFile(`${dir}vagrant.key.${type}`, 'utf8'),
        readFile(`${dir}vagrant.pub.${type}`, 'utf8').then((t) => t.trim()),
      ]);
      return { type, label: `Vagrant's insecure ${type === 'rsa' ? 'RSA' : type} key`, privateKey, publicKey, fingerprint: fingerprintOfPublicLine(publicKey) };
    }),
  );
  return loaded;
}
