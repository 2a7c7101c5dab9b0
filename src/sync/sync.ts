import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { SyncedFolder } from '../config/types.js';
import { shQuote } from '../ssh/known-hosts.js';
import { STATE_DIR } from '../config/project-file.js';
import type { SshSession } from '../ssh/client.js';
import { rsyncRemoteShell } from '../ssh/config.js';
import { UserError } from '../errors.js';
import type { MachineHandle } from '../hosts/handle.js';
import { writeMachineSshConfig } from '../access/machine-ssh-config.js';

/** The machine's enabled synced folders of type rsync, in order. */
export function rsyncFoldersOf(h: Pick<MachineHandle, 'machine'>): SyncedFolder[] {
  return h.machine.synced_folders.filter((f) => f.type === 'rsync' && !f.disabled);
}

/** The folder's absolute host path. */
export function folderSource(h: Pick<MachineHandle, 'project'>, folder: SyncedFolder): string {
  return isAbsolute(folder.host) ? folder.host : resolve(h.project.dir, folder.host);
}

/** The folder's host path, made when missing and `create: true`; an error otherwise. */
export async function ensureFolderSource(h: Pick<MachineHandle, 'project'>, folder: SyncedFolder): Promise<string> {
  const source = folderSource(h, folder);
  if (!existsSync(source)) {
    if (!folder.create) {
      throw new UserError(`synced folder ${folder.host} does not exist`, { hint: "Create it, or set 'create: true' on the folder in vmenv.yaml." });
    }
    await mkdir(source, { recursive: true });
  }
  return source;
}

/**
 * Who the folder's files belong to in the guest when `owner` or `group` is set: the
 * owner (default: the SSH user) and the group (undefined: the owner's login group, looked
 * up in the guest by guestFolderCommand). Undefined when neither is set: rsync then runs as
 * the SSH user, whose files they are.
 */
export function folderOwnership(h: Pick<MachineHandle, 'machine'>, folder: SyncedFolder): { user: string; group: string | undefined } | undefined {
  if (folder.owner === undefined && folder.group === undefined) return undefined;
  return { user: folder.owner ?? h.machine.ssh.username, group: folder.group };
}

/**
 * The guest command that makes the folder's guest path, owned by its owner and group
 * (`user:` is the user's login group, for GNU's and busybox's chown alike). When the
 * files get an owner but no group, it then prints the owner's login group id (`id -g`),
 * which rsync's `--chown` needs: see lookedUpGroups.
 */
export function guestFolderCommand(h: Pick<MachineHandle, 'machine'>, folder: SyncedFolder): string {
  const own = folderOwnership(h, folder);
  const user = own?.user ?? h.machine.ssh.username;
  const make = `sudo -n mkdir -p ${shQuote(folder.guest)} && sudo -n chown ${shQuote(`${user}:${own?.group ?? ''}`)} ${shQuote(folder.guest)}`;
  return own !== undefined && own.group === undefined ? `${make} && id -g ${shQuote(user)}` : make;
}

/**
 * The groups that guestFolderCommand looked up, from the output of the folders' commands
 * run one after another: a line per folder that needed one, in order. Pure.
 */
export function lookedUpGroups(h: Pick<MachineHandle, 'machine'>, folders: readonly SyncedFolder[], stdout: string): Map<SyncedFolder, string> {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const out = new Map<SyncedFolder, string>();
  for (const f of folders) {
    const own = folderOwnership(h, f);
    if (own === undefined || own.group !== undefined) continue;
    const gid = lines.shift();
    if (gid === undefined || !/^\d+$/.test(gid)) {
      throw new UserError(`cannot find the login group of '${own.user}' in machine '${h.machine.name}' (for ${f.guest}): 'id -g' said '${gid ?? ''}'`, {
        hint: `Set group: on the synced folder, or make sure user '${own.user}' exists in the guest.`,
      });
    }
    out.set(f, gid);
  }
  return out;
}

/**
 * rsync's arguments for the folder: deletions included, `.vmenv/` and the folder's
 * excludes left out. A folder with an owner or group is written by rsync run as root in
 * the guest (`--rsync-path='sudo -n rsync'`, as Vagrant does) with `--chown`, so every
 * file and folder synced belongs to them, also files rsync did not copy again;
 * `lookedUpGroup` is the owner's login group when `group` is not set.
 */
export function rsyncArgs(
  h: Pick<MachineHandle, 'machine'>,
  folder: SyncedFolder,
  source: string,
  remoteShell: string,
  lookedUpGroup?: string,
): string[] {
  const own = folderOwnership(h, folder);
  const group = own?.group ?? lookedUpGroup;
  if (own !== undefined && group === undefined) throw new Error(`bug: the group of ${folder.guest} was not looked up`);
  return [
    '-rlptz',
    '--delete',
    ...(own === undefined ? [] : ['--rsync-path=sudo -n rsync', `--chown=${own.user}:${group!}`]),
    `--exclude=/${STATE_DIR}/`,
    ...folder.exclude.map((e) => `--exclude=${e}`),
    // rsync reads each folder's .gitignore as it goes (a per-directory merge filter).
    ...(folder.exclude_vcs_ignored ? ['--exclude=/.git/', '--filter=:- .gitignore'] : []),
    ...folder.args,
    '-e',
    remoteShell,
    `${source.replace(/\/?$/, '/')}`,
    `${h.machine.name}:${folder.guest.replace(/\/?$/, '/')}`,
  ];
}

/** rsync ended with a failure; `rsyncExit` is its exit code (null when killed by a signal). */
export class RsyncError extends UserError {
  constructor(
    message: string,
    readonly rsyncExit: number | null,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'RsyncError';
  }
}

/**
 * Runs rsync with these arguments for the folder. Settles only once rsync has exited,
 * also when `signal` aborts (it is sent SIGTERM; the promise then rejects with the
 * signal's reason).
 */
export function runRsync(h: Pick<MachineHandle, 'machine'>, folder: SyncedFolder, args: readonly string[], signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolvePromise, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const child = spawn('rsync', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const kill = (): void => void child.kill('SIGTERM');
    signal?.addEventListener('abort', kill, { once: true });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on('error', (err: NodeJS.ErrnoException) => (spawnError = err));
    child.on('close', (code) => {
      signal?.removeEventListener('abort', kill);
      const where = `${h.machine.name}:${folder.guest}`;
      if (spawnError) {
        reject(spawnError.code === 'ENOENT' ? new UserError('rsync is not installed on this host', { hint: 'sudo apt-get install rsync' }) : spawnError);
      } else if (signal?.aborted) {
        reject(signal.reason);
      } else if (code === 0) {
        resolvePromise();
      } else if (/command not found|rsync: not found|No such file/.test(stderr) && code === 12) {
        reject(new UserError(`rsync is missing in machine '${h.machine.name}'`, { hint: 'Install rsync in the box, or use another synced folder type.' }));
      } else {
        reject(new RsyncError(`rsync of ${folder.host} to ${where} failed (exit ${String(code)}): ${stderr.trim()}`, code, stderr));
      }
    });
  });
}

/** rsync of one folder into the guest over the machine's SSH config, `.vmenv/` always left out. */
async function rsyncFolder(h: MachineHandle, session: SshSession, folder: SyncedFolder, configFile: string, signal?: AbortSignal): Promise<void> {
  const source = await ensureFolderSource(h, folder);
  const prep = await session.exec(guestFolderCommand(h, folder));
  if (prep.code !== 0) throw new UserError(`cannot create ${folder.guest} in machine '${h.machine.name}': ${prep.stderr ?? ''}`);
  const group = lookedUpGroups(h, [folder], prep.stdout ?? '').get(folder);
  await runRsync(h, folder, rsyncArgs(h, folder, source, rsyncRemoteShell(configFile), group), signal);
}

/** rsyncs every rsync synced folder of the machine into the guest, in order. */
export async function syncFolders(h: MachineHandle, session: SshSession, signal?: AbortSignal): Promise<number> {
  const folders = rsyncFoldersOf(h);
  if (folders.length === 0) return 0;
  const { path } = await writeMachineSshConfig(h);
  for (const f of folders) await rsyncFolder(h, session, f, path, signal);
  return folders.length;
}
