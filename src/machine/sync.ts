import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { SyncedFolder } from '../config/types.js';
import { shQuote } from '../libvirt/transport/ssh.js';
import { STATE_DIR } from '../project/state.js';
import { rsyncRemoteShell, type SshSession } from '../ssh/index.js';
import { UserError } from '../ui/errors.js';
import { writeMachineSshConfig, type MachineHandle } from './lifecycle.js';

/** rsync of one folder into the guest over the machine's SSH config, `.vmenv/` always left out. */
async function rsyncFolder(h: MachineHandle, session: SshSession, folder: SyncedFolder, configFile: string, signal?: AbortSignal): Promise<void> {
  const source = isAbsolute(folder.host) ? folder.host : resolve(h.project.dir, folder.host);
  if (!existsSync(source)) {
    if (!folder.create) {
      throw new UserError(`synced folder ${folder.host} does not exist`, { hint: "Create it, or set 'create: true' on the folder in vmenv.yaml." });
    }
    await mkdir(source, { recursive: true });
  }
  const user = folder.owner ?? h.machine.ssh.username;
  const group = folder.group ?? user;
  const prep = await session.exec(`sudo -n mkdir -p ${shQuote(folder.guest)} && sudo -n chown ${shQuote(`${user}:${group}`)} ${shQuote(folder.guest)}`);
  if (prep.code !== 0) throw new UserError(`cannot create ${folder.guest} in machine '${h.machine.name}': ${prep.stderr ?? ''}`);
  const args = [
    '-rlptz',
    '--delete',
    `--exclude=/${STATE_DIR}/`,
    ...folder.exclude.map((e) => `--exclude=${e}`),
    ...folder.args,
    '-e',
    rsyncRemoteShell(configFile),
    `${source.replace(/\/?$/, '/')}`,
    `${h.machine.name}:${folder.guest.replace(/\/?$/, '/')}`,
  ];
  await new Promise<void>((resolvePromise, reject) => {
    const child = spawn('rsync', args, { stdio: ['ignore', 'ignore', 'pipe'], ...(signal ? { signal } : {}) });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new UserError('rsync is not installed on this host', { hint: 'sudo apt-get install rsync' }) : err),
    );
    child.on('close', (code) => {
      if (code === 0) resolvePromise();
      else if (/command not found|rsync: not found|No such file/.test(stderr) && code === 12)
        reject(new UserError(`rsync is missing in machine '${h.machine.name}'`, { hint: 'Install rsync in the box, or use another synced folder type.' }));
      else reject(new UserError(`rsync of ${folder.host} to ${h.machine.name}:${folder.guest} failed (exit ${String(code)}): ${stderr.trim()}`));
    });
  });
}

/** rsyncs every rsync synced folder of the machine into the guest, in order. */
export async function syncFolders(h: MachineHandle, session: SshSession, signal?: AbortSignal): Promise<number> {
  const folders = h.machine.synced_folders.filter((f) => f.type === 'rsync' && !f.disabled);
  if (folders.length === 0) return 0;
  const { path } = await writeMachineSshConfig(h);
  for (const f of folders) await rsyncFolder(h, session, f, path, signal);
  return folders.length;
}
