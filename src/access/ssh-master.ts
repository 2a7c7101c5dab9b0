import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { sleep } from '../util/sleep.js';

/**
 * An OpenSSH connection master (`ControlMaster`) to one machine, held by this process
 * as a child: later `ssh` and `rsync -e ssh` runs given `controlPathArgs` reuse its
 * connection through the control socket instead of a new handshake each (and, in the
 * guests' network namespace, a new proxy command each). When the master is gone they
 * connect on their own (`ControlMaster=no`: the socket is tried, then a direct connection).
 */
export class SshMaster {
  /** Settles when ssh has exited (never, when it could not be started). */
  private readonly ended: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly controlPath: string,
  ) {
    this.ended = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /**
   * Starts a master for `host` of the OpenSSH config `configFile`, its socket at
   * `controlPath`; resolves once the socket listens. Rejects, leaving no process, when
   * ssh ends first (with its message), after `timeoutMs`, or when `signal` aborts.
   */
  static async start(options: { configFile: string; host: string; controlPath: string; timeoutMs: number; signal?: AbortSignal }): Promise<SshMaster> {
    const { configFile, host, controlPath, timeoutMs, signal } = options;
    signal?.throwIfAborted();
    // A socket left by a master that was killed would pass for this one's.
    rmSync(controlPath, { force: true });
    const child = spawn(
      'ssh',
      [
        '-F', configFile,
        '-o', 'ControlMaster=yes',
        '-o', `ControlPath=${controlPath}`,
        '-o', 'ControlPersist=no',
        // A guest that went away (a reboot) ends the master within ~6 s.
        '-o', 'ServerAliveInterval=2',
        '-o', 'ServerAliveCountMax=3',
        '-o', 'BatchMode=yes',
        '-o', 'ConnectTimeout=10',
        '-N',
        host,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const master = new SshMaster(child, controlPath);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4096)));
    let spawnError: Error | undefined;
    child.once('error', (err) => (spawnError = err));
    const deadline = performance.now() + timeoutMs;
    try {
      // ssh binds the socket under a temporary name and links it into place once it
      // listens, so the path existing means ready.
      while (!existsSync(controlPath)) {
        if (spawnError) throw spawnError;
        if (!master.alive) throw new SshMasterError(`ssh to '${host}' ended: ${lastLine(stderr) || 'no message'}`);
        if (performance.now() > deadline) throw new SshMasterError(`ssh to '${host}' did not connect within ${(timeoutMs / 1000).toFixed(0)} s`);
        await sleep(10, signal);
      }
    } catch (err) {
      await master.stop();
      throw err;
    }
    return master;
  }

  /** Node sets the exit code or signal as it emits 'exit'. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Ends the master and waits for it (SIGTERM; SIGKILL after 2 s). */
  async stop(): Promise<void> {
    if (!this.alive || this.child.pid === undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await this.ended;
    clearTimeout(timer);
  }
}

export class SshMasterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SshMasterError';
  }
}

/** The options that make `ssh -F configFile` use the master's socket when it is there. */
export function controlPathArgs(controlPath: string): string[] {
  return ['-o', 'ControlMaster=no', '-o', `ControlPath=${controlPath}`, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10'];
}

/** Runs `command` in the guest with OpenSSH (through the master when it is there). */
export function sshRun(
  configFile: string,
  host: string,
  controlPath: string,
  command: string,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    options.signal?.throwIfAborted();
    const child = spawn('ssh', ['-F', configFile, ...controlPathArgs(controlPath), host, command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-4096)));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4096)));
    const kill = (): void => void child.kill('SIGTERM');
    const timer = setTimeout(kill, options.timeoutMs);
    options.signal?.addEventListener('abort', kill, { once: true });
    let spawnError: Error | undefined;
    child.once('error', (err) => (spawnError = err));
    child.once('close', (code) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', kill);
      if (spawnError) reject(spawnError);
      else if (options.signal?.aborted) reject(options.signal.reason);
      else resolve({ code, stdout, stderr });
    });
  });
}

function lastLine(s: string): string {
  return s.trim().split(/\r?\n/).pop() ?? '';
}
