/**
 * Runs OpenSSH's `ssh` on the terminal of this process (stdio inherited, as Vagrant
 * does for `vagrant ssh`), and explains a failure to connect: when ssh has not connected
 * after a second, or ends with 255 (its own failures), `whyNot` is asked (libvirt:
 * does the machine run?) and its answer replaces ssh's network error.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { UserError } from '../errors.js';

export interface OpenSshRunOptions {
  /** Everything after `ssh`. */
  args: string[];
  /** Why the machine cannot be reached, or undefined when it should be. */
  whyNot: () => Promise<UserError | undefined>;
  /** Whether ssh is past connecting (e.g. the shared connection's socket exists). */
  connected: () => boolean;
  /** Ask `whyNot` when ssh has not connected after this long. Default 1000 ms. */
  askAfterMs?: number;
}

/** ssh's exit code (128 + signal number when a signal ended it), or 'missing' when there is no `ssh` program. */
export function runOpenSsh(o: OpenSshRunOptions): Promise<number | 'missing'> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', o.args, { stdio: 'inherit' });
    let explained: UserError | undefined;
    let spawnError: NodeJS.ErrnoException | undefined;
    const timer = setTimeout(() => {
      if (child.exitCode !== null || child.signalCode !== null || o.connected()) return;
      void o.whyNot().then(
        (err) => {
          if (err === undefined || child.exitCode !== null || child.signalCode !== null) return;
          explained = err;
          child.kill('SIGTERM');
        },
        () => undefined,
      );
    }, o.askAfterMs ?? 1000);
    child.once('error', (err: NodeJS.ErrnoException) => (spawnError = err));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (spawnError !== undefined) {
        if (spawnError.code === 'ENOENT') resolve('missing');
        else reject(spawnError);
        return;
      }
      if (explained !== undefined) {
        reject(explained);
        return;
      }
      const exit = code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0));
      if (exit !== 255) {
        resolve(exit);
        return;
      }
      // 255: ssh's own failure, or the remote command's status: libvirt tells which.
      o.whyNot().then(
        (err) => (err === undefined ? resolve(255) : reject(err)),
        () => resolve(255),
      );
    });
  });
}
