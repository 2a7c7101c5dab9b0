/**
 * One OpenSSH connection per machine, shared by `vmenv ssh` runs (OpenSSH's
 * ControlMaster, as Lima does): the first run connects and leaves the master behind,
 * idle for at most SHARED_SSH_IDLE_S; later runs open a channel on it instead of a new
 * handshake with a guest that may run under software emulation. `halt`, `suspend`,
 * `reload` and `destroy` end it; a guest that goes away ends it within
 * ServerAliveInterval × ServerAliveCountMax.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runtimeDirPath } from '../util/runtime-dir.js';

export const SHARED_SSH_IDLE_S = 600;

/** The master's control socket for a machine (by its state folder), in the per-user runtime folder. */
export function sharedSshSocket(machineDir: string, dir = runtimeDirPath()): string {
  return join(dir, `ssh-${createHash('sha256').update(machineDir).digest('hex').slice(0, 16)}.sock`);
}

/** The options that make `ssh` use the machine's master, or become it when there is none. */
export function sharedSshArgs(socket: string): string[] {
  return [
    '-o', 'ControlMaster=auto',
    '-o', `ControlPath=${socket}`,
    '-o', `ControlPersist=${SHARED_SSH_IDLE_S}`,
    '-o', 'ServerAliveInterval=5',
    '-o', 'ServerAliveCountMax=3',
  ];
}

/** Ends the machine's master, if one runs (`ssh -O exit`, bounded), and removes its socket. */
export async function endSharedSsh(machineDir: string): Promise<void> {
  const socket = sharedSshSocket(machineDir);
  if (!existsSync(socket)) return;
  await exitControlMaster(socket, 3000);
  await rm(socket, { force: true });
}

/**
 * Asks the OpenSSH master listening on `socket` to end (`ssh -O exit`); ssh is killed
 * after `timeoutMs`. Never rejects: a master that is gone or does not answer is left be.
 */
export function exitControlMaster(socket: string, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    // The host name is not looked up: the control socket is named outright.
    const child = spawn('ssh', ['-o', `ControlPath=${socket}`, '-O', 'exit', 'vmenv-master'], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    child.once('error', done);
    child.once('close', done);
  });
}
