import { isAbsolute, resolve } from 'node:path';
import type { FileProvisioner } from '../config/types.js';
import type { ProvisionerRun } from './registry.js';

/** `type: file`: copies a file or folder of the project into the guest. */
export async function uploadFile(p: FileProvisioner, { h, session }: ProvisionerRun): Promise<void> {
  const source = isAbsolute(p.source) ? p.source : resolve(h.project.dir, p.source);
  await session.upload(source, p.destination);
}
