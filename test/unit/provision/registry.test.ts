import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { FileProvisioner, ShellProvisioner } from '../../../src/config/types.js';
import type { MachineHandle } from '../../../src/hosts/handle.js';
import { runProvisioner } from '../../../src/provision/registry.js';
import type { SshSession } from '../../../src/ssh/index.js';

function fakeRun(): { calls: string[]; session: SshSession; h: MachineHandle } {
  const calls: string[] = [];
  const session = {
    upload: async (from: string, to: string) => void calls.push(`upload ${from} → ${to}`),
    exec: async (command: string) => {
      calls.push(`exec ${command.split('\n')[0]!.split(' ')[0]}`);
      return { code: 0, signal: undefined, stdout: '', stderr: '' };
    },
  } as unknown as SshSession;
  const h = { project: { dir: '/home/ann/shop' }, machine: { name: 'web' } } as unknown as MachineHandle;
  return { calls, session, h };
}

describe('runProvisioner', () => {
  it('runs each type by its own kind: file uploads from the project, shell copies its script in and runs it', async () => {
    const { calls, session, h } = fakeRun();
    const out = new PassThrough();
    const file = { type: 'file', source: 'conf/app.ini', destination: '/etc/app.ini' } as FileProvisioner;
    await runProvisioner(file, { h, session, label: 'file #1', out });
    const shell = { type: 'shell', inline: 'echo hi', args: [], env: {}, privileged: false } as unknown as ShellProvisioner;
    await runProvisioner(shell, { h, session, label: 'shell #2', out });
    expect(calls).toEqual(['upload /home/ann/shop/conf/app.ini → /etc/app.ini', 'exec cat', expect.stringMatching(/^exec \/tmp\/vmenv-provision-/)]);
  });
});
