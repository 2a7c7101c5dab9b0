/**
 * SSH sessions to guests, with ssh2: the machine's own key, the host key pinned on
 * first contact, keepalives, and the things vmenv does there — run commands (stdout
 * and stderr kept apart, streamed or collected), an interactive shell for `vmenv ssh`,
 * and SFTP uploads for the file provisioner.
 *
 * A guest is reached directly (`host`:`port`), through a jump host (`jump`: a remote
 * libvirt host, over SSH port forwarding), or through a command whose stdin/stdout is
 * the connection (`proxyCommand`, e.g. `ip netns exec vmenv-test nc %h %p` for guests
 * inside a network namespace) — the same three ways `ssh-config` renders for OpenSSH.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Duplex, Readable } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig, ParsedKey, PseudoTtyOptions, SFTPWrapper } from 'ssh2';
import { preferredHostKeyAlgorithms } from './host-key-algorithms.js';
import { DEFAULT_SSH_PORT, entryMatchesHost, keyTypeOfBlob } from './known-hosts.js';
import { SshError, type SshFailureKind } from './errors.js';
import {
  compareHostKey,
  pinnedKeyFromBlob,
  readKnownHosts,
  verifyAgainstKnownHosts,
  type HostKeyStore,
  type PinnedKey,
} from './host-key.js';
import { parsePrivateKey } from './keys.js';

const { Client } = ssh2;
type Ssh2Client = InstanceType<typeof Client>;

export const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;
export const DEFAULT_KEEPALIVE_COUNT_MAX = 3;

export interface SshJump {
  host: string;
  port?: number;
  username: string;
  privateKey: string | Buffer;
  /** The jump host's key: a pin store, or a known_hosts file read with OpenSSH's rules. */
  hostKey: HostKeyStore | { knownHostsFile: string };
}

export interface ConnectSshOptions {
  host: string;
  /** Default 22. */
  port?: number;
  username: string;
  /** The private key's text (OpenSSH or PEM format, unencrypted). */
  privateKey: string | Buffer;
  /** How messages name `privateKey`, e.g. "the machine's key". */
  privateKeyLabel?: string;
  /**
   * Keys offered after `privateKey` on the same connection, in order, until the server
   * accepts one (`SshSession.acceptedKey` says which): a box that expects another key
   * costs no second connection.
   */
  fallbackKeys?: readonly SshIdentity[];
  /** The machine's pinned host key: verified when set, recorded on first contact. */
  hostKey: HostKeyStore;
  /** Bound on TCP connect + handshake + authentication (+ jump/proxy). Default 20 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Reach the guest through this SSH host (port forwarding, like ProxyJump). */
  jump?: SshJump;
  /**
   * Reach the guest through this command's stdin/stdout, run as OpenSSH runs a
   * ProxyCommand (`sh -c 'exec <command>'`, with `%h`, `%p`, `%r` and `%%` replaced),
   * so the same string serves both, e.g. `ip netns exec vmenv-test nc %h %p`.
   */
  proxyCommand?: string;
  /**
   * An open connection to the server (e.g. from `dialUntilAnswered`), used instead of
   * dialing: `host` and `port` then only name it in messages. Not with `jump` or `proxyCommand`.
   */
  sock?: Duplex;
  /** SSH-level keepalive interval (ssh2's keepaliveInterval); 0 turns it off. Default 15 s. */
  keepaliveIntervalMs?: number;
  /** Unanswered keepalives before the connection is declared lost. Default 3. */
  keepaliveCountMax?: number;
  /** What is being reached, for messages, e.g. "machine 'web'". */
  label?: string;
  /** ssh2's debug lines. */
  debug?: (line: string) => void;
}

/** A private key to offer, and how messages name it. */
export interface SshIdentity {
  privateKey: string | Buffer;
  label?: string;
}

/** The key the server accepted: its place among those offered (0: `privateKey`). */
export interface AcceptedKey {
  index: number;
  label: string | undefined;
  /** `SHA256:…` of its public half. */
  fingerprint: string;
}

export interface PtyRequest {
  term?: string;
  cols?: number;
  rows?: number;
}

export interface ExecOptions {
  /** Fed to the command's stdin, then EOF. Without it the command gets EOF at once. */
  stdin?: string | Buffer | Readable;
  /** Sent as SSH environment requests: the server applies only the names its AcceptEnv allows. */
  env?: Record<string, string>;
  /** Run on a pseudo-terminal (its output then all arrives on stdout). */
  pty?: boolean | PtyRequest;
  /** Streams stdout; when given, stdout is not collected. */
  onStdout?: (chunk: Buffer) => void;
  /** Streams stderr; when given, stderr is not collected. */
  onStderr?: (chunk: Buffer) => void;
  /** Cancels the command: it is sent SIGTERM and its channel closed; the promise rejects with the reason. */
  signal?: AbortSignal;
}

export interface ExecResult {
  /** The exit status, or null when the command died of a signal (or reported none). */
  code: number | null;
  /** The signal that ended it, e.g. `SIGKILL`. */
  signal?: string;
  /** Collected stdout (UTF-8), unless onStdout was given. */
  stdout?: string;
  /** Collected stderr (UTF-8), unless onStderr was given. */
  stderr?: string;
}

/** The terminal side of an interactive session: process.stdin/stdout/stderr by default. */
export interface ShellOptions {
  stdin?: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown; isRaw?: boolean };
  stdout?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number; on?: (ev: 'resize', f: () => void) => unknown; off?: (ev: 'resize', f: () => void) => unknown };
  stderr?: NodeJS.WritableStream;
  /** Run this instead of the login shell (still interactive). */
  command?: string;
  /** Default: a pty when stdin is a terminal (as OpenSSH). */
  pty?: boolean;
  /** Default $TERM, else xterm-256color. */
  term?: string;
  env?: Record<string, string>;
}

export interface UploadOptions {
  /** Bytes written so far and the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Files sent at the same time (folders). Default 8. */
  parallel?: number;
}

export interface UploadResult {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
}

export interface SshSession {
  /** `user@host:port` (and the label), for messages. */
  readonly target: string;
  /** The host key the guest presented (now pinned). */
  readonly hostKey: PinnedKey;
  /** True when this connection pinned the key (first contact). */
  readonly pinnedNow: boolean;
  /** The server's software version from its banner, e.g. `OpenSSH_9.2p1` (empty when unknown). */
  readonly serverSoftware: string;
  /** The key that logged in. */
  readonly acceptedKey: AcceptedKey;
  readonly closed: boolean;
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /** An interactive session; resolves with the remote exit status when it ends. */
  shell(options?: ShellOptions): Promise<ExecResult>;
  /** Upload a file, or a folder recursively, to `remotePath` (modes and mtimes kept, symlinks recreated). */
  upload(localPath: string, remotePath: string, options?: UploadOptions): Promise<UploadResult>;
  /** The session's SFTP channel (opened once, on first use). */
  sftp(): Promise<SFTPWrapper>;
  /** Called once when the connection ends, with the error when it was lost. */
  onClose(listener: (err?: SshError) => void): void;
  close(): Promise<void>;
}

function hostDisplay(host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `${h}:${port}`;
}

/** `%h`, `%p`, `%r`, `%n`, `%%` in a ProxyCommand, as OpenSSH expands them. */
export function expandProxyCommand(command: string, host: string, port: number, user: string): string {
  return command.replace(/%([hprn%])/g, (_m, c: string) => {
    switch (c) {
      case 'h':
      case 'n':
        return host;
      case 'p':
        return String(port);
      case 'r':
        return user;
      default:
        return '%';
    }
  });
}

/** Classify an ssh2 error raised before the session was ready. */
function classify(err: Error & { level?: string; code?: string | number }): { kind: SshFailureKind; detail: string } {
  const code = typeof err.code === 'string' ? err.code : undefined;
  switch (err.level) {
    case 'client-authentication':
      return { kind: 'auth', detail: err.message };
    case 'client-timeout':
      return { kind: 'timeout', detail: err.message };
    case 'client-dns':
      return { kind: 'dns', detail: err.message };
    case 'client-socket':
      if (code === 'ECONNREFUSED') return { kind: 'refused', detail: err.message };
      if (code === 'ECONNRESET' || code === 'EPIPE') return { kind: 'closed', detail: err.message };
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { kind: 'dns', detail: err.message };
      if (code === 'ETIMEDOUT') return { kind: 'timeout', detail: err.message };
      return { kind: 'unreachable', detail: err.message };
  }
  if (/before handshake|connection lost|closed|reset|ended/i.test(err.message)) return { kind: 'closed', detail: err.message };
  return { kind: 'protocol', detail: err.message };
}

const HINTS: Partial<Record<SshFailureKind, string>> = {
  refused: 'Nothing listens there yet: the guest may still be booting, or its sshd is not running. `vmenv status` shows whether the machine runs.',
  closed: 'The connection was accepted and then closed before SSH started: the guest may still be booting (with user-mode networking, QEMU accepts connections before the guest listens).',
  unreachable: 'The address cannot be reached: is the machine running, and its network up? `vmenv status` shows its address.',
  timeout: 'No SSH answer in time: the guest may be slow to boot (software emulation) or its network is not up. The serial console log shows how far it got.',
  dns: 'Check the host name.',
  protocol: 'The server and vmenv could not agree on the SSH protocol; the guest image may be very old or its sshd misconfigured.',
};

function keyFingerprintOf(key: ParsedKey): string {
  return pinnedKeyFromBlob(key.getPublicSSH()).fingerprint;
}

/** "the server refused the key ssh-ed25519 SHA256:…", or every key offered, each with its name. */
function refusedKeysText(keys: RawOptions['keys']): string {
  const one = (k: RawOptions['keys'][number]): string => `${k.key.type} ${keyFingerprintOf(k.key)}${k.label ? ` (${k.label})` : ''}`;
  if (keys.length === 1) return `the server refused the key ${one(keys[0]!)}`;
  return `the server refused all ${keys.length} keys offered: ${keys.map(one).join(', ')}`;
}

function authHint(username: string, keys: number): string {
  const what = keys === 1 ? 'the key' : `any of the ${keys} keys`;
  return (
    `The guest's sshd answered but did not accept ${what} for '${username}': ${keys === 1 ? 'it is' : 'they are'} not installed there. A box that ignores the cloud-init seed ` +
    `expects a key of its own: set ssh.private_key_path in vmenv.yaml to the private key it expects (Vagrant's insecure ` +
    `keys are tried unless it is set); or the user '${username}' does not exist in the guest (set ssh.username).`
  );
}

interface Raw {
  client: Ssh2Client;
  hostKey: PinnedKey;
  pinnedNow: boolean;
  acceptedKey: AcceptedKey;
  /** Things to end with the connection (jump client, proxy process). */
  cleanups: Array<() => void>;
}

interface RawOptions {
  host: string;
  port: number;
  username: string;
  /** Offered in order on the one connection. */
  keys: ReadonlyArray<{ key: ParsedKey; label?: string | undefined }>;
  verify: (offered: Buffer) => Promise<PinnedKey | 'match'>;
  pinned: string[];
  target: string;
  deadline: number;
  signal: AbortSignal | undefined;
  sock?: Duplex;
  /** What the proxy said, once it has finished saying it. */
  sockProblem?: () => Promise<{ kind: SshFailureKind; detail: string } | undefined>;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  debug: ((line: string) => void) | undefined;
  /** Run once the session is up and the host key verified (pinning). */
  onReady?: (offered: PinnedKey | undefined) => Promise<void>;
}

/** One SSH connection: TCP (or `sock`), handshake, host key check, public key auth. */
function openRaw(o: RawOptions): Promise<Raw> {
  return new Promise<Raw>((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(o.signal.reason);
      return;
    }
    const client = new Client();
    let settled = false;
    let hostKeyError: Error | undefined;
    let offeredNew: PinnedKey | undefined;
    let offered: PinnedKey | undefined;
    const remaining = Math.max(1, o.deadline - Date.now());
    const timer = setTimeout(() => {
      fail(
        new SshError('timeout', `timed out after ${(remaining / 1000).toFixed(1)} s connecting to ${o.target}`, o.target, {
          hint: HINTS.timeout,
        }),
      );
    }, remaining);
    const onAbort = (): void => fail(o.signal?.reason ?? new Error('aborted'));
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = (): void => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
    };
    function fail(err: unknown): void {
      if (settled) return;
      settled = true;
      cleanup();
      client.on('error', () => undefined);
      client.end();
      client.destroy();
      o.sock?.destroy();
      reject(err);
    }
    const problemFromSock = async (): Promise<SshError | undefined> => {
      const p = await o.sockProblem?.();
      if (p === undefined) return undefined;
      return new SshError(p.kind, `cannot reach ${o.target}: ${p.detail}`, o.target, { hint: HINTS[p.kind] });
    };
    let failing = false;
    const onError = (err: Error & { level?: string; code?: string | number }): void => {
      if (settled || failing) return;
      if (hostKeyError !== undefined) {
        fail(hostKeyError);
        return;
      }
      const kind = classify(err).kind;
      if (o.sockProblem !== undefined && kind !== 'auth' && kind !== 'timeout') {
        // The proxy's own account of a broken connection beats ssh2's "connection lost".
        failing = true;
        void problemFromSock().then((viaSock) => {
          failing = false;
          if (viaSock !== undefined) fail(viaSock);
          else failWith(err);
        });
        return;
      }
      failWith(err);
    };
    const failWith = (err: Error & { level?: string; code?: string | number }): void => {
      const { kind, detail } = classify(err);
      let msg: string;
      switch (kind) {
        case 'auth':
          msg = `SSH authentication failed for ${o.target}: ${refusedKeysText(o.keys)}`;
          break;
        case 'refused':
          msg = `nothing accepts SSH connections at ${o.target} (connection refused)`;
          break;
        case 'closed':
          msg = `the connection to ${o.target} closed before the SSH session was set up (${detail})`;
          break;
        case 'timeout':
          msg = `timed out waiting for the SSH handshake with ${o.target}`;
          break;
        default:
          msg = `cannot connect to ${o.target}: ${detail}`;
      }
      fail(new SshError(kind, msg, o.target, { cause: err, hint: kind === 'auth' ? authHint(o.username, o.keys.length) : HINTS[kind] }));
    };
    const onClose = (): void => {
      if (settled || failing) return;
      const closed = (): SshError =>
        new SshError('closed', `the connection to ${o.target} closed before the SSH session was set up`, o.target, { hint: HINTS.closed });
      if (hostKeyError !== undefined) fail(hostKeyError);
      else if (o.sockProblem !== undefined) {
        failing = true;
        void problemFromSock().then((viaSock) => fail(viaSock ?? closed()));
      } else fail(closed());
    };
    client.on('error', onError);
    client.once('close', onClose);
    client.once('ready', () => {
      if (settled) return;
      const done = o.onReady ? o.onReady(offeredNew) : Promise.resolve();
      done.then(
        () => {
          if (settled) return;
          settled = true;
          cleanup();
          // From here the owner listens; until it does (a jump host's connection while the
          // guest's is being set up), an error must not go unhandled.
          client.on('error', () => undefined);
          const k = o.keys[Math.max(0, offeredIndex)]!;
          resolve({
            client,
            hostKey: offered!,
            pinnedNow: offeredNew !== undefined,
            acceptedKey: { index: Math.max(0, offeredIndex), label: k.label, fingerprint: keyFingerprintOf(k.key) },
            cleanups: [],
          });
        },
        (err: unknown) => fail(err),
      );
    });

    let offeredIndex = -1;
    const cfg: ConnectConfig = {
      host: o.host,
      port: o.port,
      username: o.username,
      // Our own timer reports the timeout; ssh2's is a backstop.
      readyTimeout: remaining + 5_000,
      keepaliveInterval: o.keepaliveIntervalMs,
      keepaliveCountMax: o.keepaliveCountMax,
      hostVerifier: (key: Buffer, done: (ok: boolean) => void): void => {
        o.verify(key).then(
          (r) => {
            offered = r === 'match' ? pinnedKeyFromBlob(key) : r;
            if (r !== 'match') offeredNew = r;
            done(true);
          },
          (err: Error) => {
            hostKeyError = err;
            done(false);
          },
        );
      },
      algorithms: { serverHostKey: preferredHostKeyAlgorithms(o.pinned) },
      // Straight to the keys, one after another: no "none" round trip, no other method.
      authHandler: (_left, _partial, next) => {
        const k = o.keys[offeredIndex + 1];
        if (k === undefined) {
          next(false as unknown as ssh2.AnyAuthMethod);
          return;
        }
        offeredIndex++;
        next({ type: 'publickey', username: o.username, key: k.key });
      },
    };
    if (o.sock) cfg.sock = o.sock;
    if (o.debug) cfg.debug = o.debug;
    try {
      client.connect(cfg);
      client.setNoDelay(true);
    } catch (err) {
      fail(new SshError('protocol', `cannot start the SSH connection to ${o.target}: ${(err as Error).message}`, o.target, { cause: err }));
    }
  });
}

/** The proxy command's stdin/stdout as one stream, and what its stderr said. */
function spawnProxy(command: string): {
  sock: Duplex;
  child: ChildProcess;
  problem: () => Promise<{ kind: SshFailureKind; detail: string } | undefined>;
} {
  // As OpenSSH runs a ProxyCommand: `exec` in front, so the proxy is the shell's own process.
  const child = spawn('/bin/sh', ['-c', `exec ${command}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let exit: string | undefined;
  let spawnError: Error | undefined;
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString('utf8');
  });
  child.on('error', (err) => {
    spawnError = err;
  });
  child.on('exit', (code, sig) => {
    exit = sig ? `was killed by ${sig}` : `exited with status ${code}`;
  });
  const ended = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => resolve());
  });
  const sock = Duplex.from({ readable: child.stdout!, writable: child.stdin! });
  sock.on('error', () => undefined);
  const problem = async (): Promise<{ kind: SshFailureKind; detail: string } | undefined> => {
    // Its exit and last words arrive just after its stdout closes; wait for them (briefly).
    let t: NodeJS.Timeout | undefined;
    await Promise.race([ended, new Promise<void>((r) => (t = setTimeout(r, 1_000)))]);
    clearTimeout(t);
    if (spawnError) return { kind: 'proxy', detail: `cannot run the proxy command: ${spawnError.message}` };
    const said = stderr.trim().split('\n').slice(-3).join(' | ');
    if (exit === undefined && said === '') return undefined;
    const detail = `the proxy command (${command}) ${exit ?? 'failed'}${said ? `: ${said}` : ''}`;
    if (/refused/i.test(said)) return { kind: 'refused', detail };
    if (/no route|unreachable|host is down/i.test(said)) return { kind: 'unreachable', detail };
    if (/timed out/i.test(said)) return { kind: 'timeout', detail };
    if (said === '') return { kind: 'closed', detail };
    return { kind: 'proxy', detail };
  };
  return { sock, child, problem };
}

/** Open a channel to host:port through an established connection (ProxyJump), bounded by the deadline. */
function forwardThrough(jump: Ssh2Client, host: string, port: number, target: string, deadline: number, signal: AbortSignal | undefined): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: unknown, ch?: Duplex): void => {
      if (done) {
        ch?.destroy();
        return;
      }
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) reject(err);
      else resolve(ch!);
    };
    const onAbort = (): void => finish(signal?.reason ?? new Error('aborted'));
    const timer = setTimeout(
      () => finish(new SshError('timeout', `timed out asking the jump host to connect to ${target}`, target, { hint: HINTS.timeout })),
      Math.max(1, deadline - Date.now()),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) {
      onAbort();
      return;
    }
    jump.forwardOut('127.0.0.1', 0, host, port, (err, channel) => {
      if (err) {
        const kind: SshFailureKind = /refused/i.test(err.message) ? 'refused' : 'unreachable';
        finish(new SshError(kind, `the jump host cannot reach ${target}: ${err.message}`, target, { cause: err, hint: HINTS[kind] }));
        return;
      }
      finish(undefined, channel);
    });
  });
}

/** What a connection reaches, for messages: `user@host:port`, or `label (user@host:port)`. */
export function sshTargetLabel(o: Pick<ConnectSshOptions, 'username' | 'host' | 'port' | 'label'>): string {
  const where = `${o.username}@${hostDisplay(o.host, o.port ?? DEFAULT_SSH_PORT)}`;
  return o.label ? `${o.label} (${where})` : where;
}

/**
 * Connect to a guest: handshake, verify (or, on first contact, pin) its host key,
 * authenticate with the machine's key. Rejects with an SshError whose `kind` says what
 * went wrong (refused, closed, timeout, auth, host-key, …), or with `signal.reason`.
 */
export async function connectSsh(opts: ConnectSshOptions): Promise<SshSession> {
  const port = opts.port ?? DEFAULT_SSH_PORT;
  const target = sshTargetLabel(opts);
  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  const keys = [
    { key: parsePrivateKey(opts.privateKey, opts.privateKeyLabel ?? `the private key for ${target}`), label: opts.privateKeyLabel },
    ...(opts.fallbackKeys ?? []).map((k, i) => ({ key: parsePrivateKey(k.privateKey, k.label ?? `key ${i + 2} for ${target}`), label: k.label })),
  ];
  const pin = await opts.hostKey.get();
  const storeName = opts.hostKey.describe?.();
  const keepaliveIntervalMs = opts.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS;
  const keepaliveCountMax = opts.keepaliveCountMax ?? DEFAULT_KEEPALIVE_COUNT_MAX;

  const cleanups: Array<() => void> = [];
  const runCleanups = (): void => {
    for (const c of cleanups.splice(0)) {
      try {
        c();
      } catch {
        // best effort
      }
    }
  };

  let sock: Duplex | undefined = opts.sock;
  let sockProblem: RawOptions['sockProblem'];
  if (sock !== undefined && (opts.jump !== undefined || opts.proxyCommand !== undefined)) {
    throw new TypeError('connectSsh: `sock` cannot go with `jump` or `proxyCommand`');
  }
  try {
    if (opts.jump !== undefined) {
      const j = opts.jump;
      const jport = j.port ?? DEFAULT_SSH_PORT;
      const jtarget = `jump host ${j.username}@${hostDisplay(j.host, jport)}`;
      const jkey = parsePrivateKey(j.privateKey, `the private key for ${jtarget}`);
      let verify: RawOptions['verify'];
      let pinned: string[] = [];
      let onReady: RawOptions['onReady'];
      if ('knownHostsFile' in j.hostKey) {
        const file = j.hostKey.knownHostsFile;
        const entries = await readKnownHosts(file);
        // Offer first the key types known_hosts holds for it, as OpenSSH does.
        pinned = [
          ...new Set(entries.filter((e) => e.marker === undefined && entryMatchesHost(e, j.host, jport)).map((e) => keyTypeOfBlob(e.key))),
        ];
        verify = async (offered) => {
          verifyAgainstKnownHosts(entries, file, j.host, jport, offered, jtarget);
          return 'match';
        };
      } else {
        const store = j.hostKey;
        const jpin = await store.get();
        if (jpin) pinned = [jpin.algorithm];
        verify = async (offered) => {
          const v = compareHostKey(jpin, offered, { target: jtarget, ...(store.describe ? { store: store.describe() } : {}) });
          return v.status === 'match' ? 'match' : v.key;
        };
        onReady = async (k) => {
          if (k) await store.set(k);
        };
      }
      const jraw = await openRaw({
        host: j.host,
        port: jport,
        username: j.username,
        keys: [{ key: jkey }],
        verify,
        pinned,
        target: jtarget,
        deadline,
        signal: opts.signal,
        keepaliveIntervalMs,
        keepaliveCountMax,
        debug: opts.debug,
        ...(onReady ? { onReady } : {}),
      });
      cleanups.push(() => {
        jraw.client.end();
      });
      sock = await forwardThrough(jraw.client, opts.host, port, target, deadline, opts.signal);
    } else if (opts.proxyCommand !== undefined) {
      const p = spawnProxy(expandProxyCommand(opts.proxyCommand, opts.host, port, opts.username));
      sock = p.sock;
      sockProblem = p.problem;
      cleanups.push(() => {
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
      });
    }

    const raw = await openRaw({
      host: opts.host,
      port,
      username: opts.username,
      keys,
      verify: async (offered) => {
        const v = compareHostKey(pin, offered, { target, ...(storeName ? { store: storeName } : {}) });
        return v.status === 'match' ? 'match' : v.key;
      },
      pinned: pin ? [pin.algorithm] : [],
      target,
      deadline,
      signal: opts.signal,
      ...(sock ? { sock } : {}),
      ...(sockProblem ? { sockProblem } : {}),
      keepaliveIntervalMs,
      keepaliveCountMax,
      debug: opts.debug,
      // Pin only once the guest has accepted the machine's key: a stranger that merely
      // answered on the port is not recorded.
      onReady: async (k) => {
        if (k) await opts.hostKey.set(k);
      },
    });
    raw.cleanups.push(...cleanups);
    return new Session(raw, target);
  } catch (err) {
    runCleanups();
    throw err;
  }
}

class Session implements SshSession {
  readonly hostKey: PinnedKey;
  readonly pinnedNow: boolean;
  readonly serverSoftware: string;
  readonly acceptedKey: AcceptedKey;
  private readonly client: Ssh2Client;
  private isClosed = false;
  private lostError: SshError | undefined;
  private readonly pending = new Set<(err: SshError) => void>();
  private readonly closeListeners: Array<(err?: SshError) => void> = [];
  private readonly closedPromise: Promise<void>;
  private sftpPromise: Promise<SFTPWrapper> | undefined;
  private ending = false;

  constructor(
    raw: Raw,
    readonly target: string,
  ) {
    this.client = raw.client;
    this.hostKey = raw.hostKey;
    this.pinnedNow = raw.pinnedNow;
    this.acceptedKey = raw.acceptedKey;
    this.serverSoftware = (this.client as unknown as { _remoteVer?: string })._remoteVer ?? '';
    this.closedPromise = new Promise<void>((resolve) => {
      this.client.on('error', (err: Error & { level?: string }) => {
        if (this.ending) return;
        this.lostError ??= new SshError(
          'lost',
          err.level === 'client-timeout'
            ? `the SSH connection to ${target} stopped answering (no reply to keepalives)`
            : `the SSH connection to ${target} failed: ${err.message}`,
          target,
          { cause: err, hint: 'The guest may have been halted, suspended or rebooted. `vmenv status` shows its state.' },
        );
      });
      this.client.once('close', () => {
        this.isClosed = true;
        for (const c of raw.cleanups.splice(0)) {
          try {
            c();
          } catch {
            // best effort
          }
        }
        const err =
          this.lostError ??
          (this.ending ? undefined : new SshError('lost', `the SSH connection to ${target} closed`, target, { hint: 'The guest may have been halted or rebooted.' }));
        for (const p of [...this.pending]) p(err ?? new SshError('lost', `the SSH connection to ${target} was closed`, target));
        this.pending.clear();
        for (const l of this.closeListeners.splice(0)) l(err);
        resolve();
      });
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  onClose(listener: (err?: SshError) => void): void {
    if (this.isClosed) listener(this.lostError);
    else this.closeListeners.push(listener);
  }

  private lost(): SshError {
    return this.lostError ?? new SshError('lost', `the SSH connection to ${this.target} is closed`, this.target);
  }

  /** Open a session channel (exec or shell) and wire it; resolves with its exit status at close. */
  private run(
    start: (cb: (err: Error | undefined, ch: ClientChannel) => void) => void,
    what: string,
    wire: (ch: ClientChannel) => () => void,
    signal?: AbortSignal,
  ): Promise<{ code: number | null; signal?: string }> {
    return new Promise((resolve, reject) => {
      if (this.isClosed || this.ending) {
        reject(this.lost());
        return;
      }
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      let settled = false;
      let channel: ClientChannel | undefined;
      let unwire: (() => void) | undefined;
      const finish = (err: unknown, result?: { code: number | null; signal?: string }): void => {
        if (settled) return;
        settled = true;
        this.pending.delete(onLost);
        signal?.removeEventListener('abort', onAbort);
        unwire?.();
        if (err !== undefined) reject(err);
        else resolve(result!);
      };
      const onLost = (err: SshError): void => finish(err);
      const onAbort = (): void => {
        if (channel) {
          try {
            channel.signal('TERM');
          } catch {
            // the server may not take signals
          }
          channel.close();
        }
        finish(signal!.reason);
      };
      this.pending.add(onLost);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        start((err, ch) => {
          if (err) {
            finish(new SshError(this.isClosed ? 'lost' : 'protocol', `${this.target} refused to start ${what}: ${err.message}`, this.target, { cause: err }));
            return;
          }
          if (settled) {
            ch.close();
            return;
          }
          channel = ch;
          // A write racing the far side's close must not become an unhandled 'error'.
          ch.on('error', () => undefined);
          let code: number | null = null;
          let sig: string | undefined;
          ch.on('exit', ((c: number | null, s?: string) => {
            code = c;
            if (s) sig = s;
          }) as (code: number) => void);
          ch.once('close', () => finish(undefined, sig === undefined ? { code } : { code, signal: sig }));
          unwire = wire(ch);
        });
      } catch (err) {
        finish(this.lost());
        void err;
      }
    });
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const opts: { env?: Record<string, string>; pty?: PseudoTtyOptions | boolean } = {};
    if (options.env) opts.env = options.env;
    if (options.pty) {
      const p = options.pty === true ? {} : options.pty;
      opts.pty = { term: p.term ?? 'xterm-256color', cols: p.cols ?? 80, rows: p.rows ?? 24 };
    }
    const r = await this.run(
      (cb) => this.client.exec(command, opts, cb as (e: Error | undefined, ch: ClientChannel) => void),
      `the command ${JSON.stringify(command.length > 60 ? `${command.slice(0, 57)}...` : command)}`,
      (ch) => {
        ch.on('data', options.onStdout ?? ((d: Buffer) => out.push(d)));
        ch.stderr.on('data', options.onStderr ?? ((d: Buffer) => err.push(d)));
        const stdin = options.stdin;
        if (stdin === undefined) ch.end();
        else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) ch.end(stdin);
        else {
          stdin.pipe(ch);
          return () => {
            stdin.unpipe(ch);
          };
        }
        return () => undefined;
      },
      options.signal,
    );
    const res: ExecResult = { code: r.code };
    if (r.signal !== undefined) res.signal = r.signal;
    if (!options.onStdout) res.stdout = Buffer.concat(out).toString('utf8');
    if (!options.onStderr) res.stderr = Buffer.concat(err).toString('utf8');
    return res;
  }

  async shell(options: ShellOptions = {}): Promise<ExecResult> {
    const stdin = options.stdin ?? (process.stdin as NonNullable<ShellOptions['stdin']>);
    const stdout = options.stdout ?? (process.stdout as NonNullable<ShellOptions['stdout']>);
    const stderr = options.stderr ?? process.stderr;
    const usePty = options.pty ?? stdin.isTTY === true;
    const size = (): { rows: number; cols: number } => ({ rows: stdout.rows ?? 24, cols: stdout.columns ?? 80 });
    const window: PseudoTtyOptions = { term: options.term ?? process.env.TERM ?? 'xterm-256color', ...size(), height: 0, width: 0 };
    const channelOpts: { env?: Record<string, string>; pty?: PseudoTtyOptions } = {};
    if (options.env) channelOpts.env = options.env;

    const start = (cb: (err: Error | undefined, ch: ClientChannel) => void): void => {
      const f = cb as (e: Error | undefined, ch: ClientChannel) => void;
      if (options.command !== undefined) {
        if (usePty) channelOpts.pty = window;
        this.client.exec(options.command, channelOpts, f);
      } else if (usePty) this.client.shell(window, channelOpts, f);
      else this.client.shell(false, channelOpts, f);
    };

    const wasRaw = stdin.isRaw === true;
    let rawSet = false;
    const restore = (): void => {
      if (rawSet && typeof stdin.setRawMode === 'function') {
        stdin.setRawMode(wasRaw);
        rawSet = false;
      }
    };
    // Should the process end with the terminal raw, put it back first.
    const onExit = (): void => restore();
    const onSignal = (sig: NodeJS.Signals): void => {
      restore();
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
      // Die of it as we would have, unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    const r = await this.run(start, options.command === undefined ? 'a shell' : 'the command', (ch) => {
      if (usePty && stdin.isTTY === true && typeof stdin.setRawMode === 'function') {
        stdin.setRawMode(true);
        rawSet = true;
        process.once('exit', onExit);
        process.once('SIGTERM', onSignal);
        process.once('SIGHUP', onSignal);
      }
      const onResize = (): void => {
        const s = size();
        ch.setWindow(s.rows, s.cols, 0, 0);
      };
      if (usePty) stdout.on?.('resize', onResize);
      ch.pipe(stdout, { end: false });
      ch.stderr.pipe(stderr, { end: false });
      stdin.pipe(ch);
      stdin.resume();
      return () => {
        stdin.unpipe(ch);
        stdin.pause();
        ch.unpipe(stdout);
        ch.stderr.unpipe(stderr);
        if (usePty) stdout.off?.('resize', onResize);
        restore();
        process.off('exit', onExit);
        process.off('SIGTERM', onSignal);
        process.off('SIGHUP', onSignal);
      };
    });
    return r.signal === undefined ? { code: r.code } : { code: r.code, signal: r.signal };
  }

  sftp(): Promise<SFTPWrapper> {
    if (this.isClosed || this.ending) return Promise.reject(this.lost());
    this.sftpPromise ??= new Promise<SFTPWrapper>((resolve, reject) => {
      const onLost = (err: SshError): void => reject(err);
      this.pending.add(onLost);
      this.client.sftp((err, sftp) => {
        this.pending.delete(onLost);
        if (err) {
          this.sftpPromise = undefined;
          reject(
            new SshError('protocol', `${this.target} refused an SFTP session: ${err.message}`, this.target, {
              cause: err,
              hint: "The guest's sshd needs an sftp Subsystem (Debian's openssh-server has one).",
            }),
          );
          return;
        }
        sftp.on('close', () => {
          this.sftpPromise = undefined;
        });
        resolve(sftp);
      });
    });
    return this.sftpPromise;
  }

  async upload(localPath: string, remotePath: string, options: UploadOptions = {}): Promise<UploadResult> {
    const sftp = await this.sftp();
    const remote = remotePath.startsWith('~/') ? remotePath.slice(2) : remotePath === '~' ? '.' : remotePath;
    const top = await stat(localPath).catch((err: NodeJS.ErrnoException) => {
      throw new SshError('key', `cannot upload ${localPath}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`, this.target, { cause: err });
    });
    // Plan first (sizes for progress), then send.
    type Item =
      | { type: 'dir'; local: string; remote: string; mode: number; mtime: number }
      | { type: 'file'; local: string; remote: string; mode: number; mtime: number; size: number }
      | { type: 'link'; target: string; remote: string };
    const items: Item[] = [];
    const walk = async (local: string, rem: string): Promise<void> => {
      const st = await lstat(local);
      if (st.isSymbolicLink()) {
        items.push({ type: 'link', target: await readlink(local), remote: rem });
      } else if (st.isDirectory()) {
        items.push({ type: 'dir', local, remote: rem, mode: st.mode & 0o7777, mtime: st.mtimeMs / 1000 });
        const names = (await readdir(local)).sort();
        for (const n of names) await walk(join(local, n), posix.join(rem, n));
      } else if (st.isFile()) {
        items.push({ type: 'file', local, remote: rem, mode: st.mode & 0o7777, mtime: st.mtimeMs / 1000, size: st.size });
      }
      // Sockets, fifos and devices are not copied.
    };
    if (top.isDirectory()) await walk(localPath, remote);
    else items.push({ type: 'file', local: localPath, remote, mode: top.mode & 0o7777, mtime: top.mtimeMs / 1000, size: top.size });

    const total = items.reduce((n, i) => n + (i.type === 'file' ? i.size : 0), 0);
    let done = 0;
    const result: UploadResult = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
    const fail = (what: string, path: string, err: Error): SshError =>
      new SshError(this.isClosed ? 'lost' : 'protocol', `cannot ${what} ${path} on ${this.target}: ${err.message}`, this.target, {
        cause: err,
        ...(/permission denied/i.test(err.message)
          ? { hint: `The SSH user cannot write there; upload to a writable place (e.g. /tmp) and move it with sudo.` }
          : {}),
      });
    const call = <T>(what: string, path: string, f: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const onLost = (err: SshError): void => reject(err);
        this.pending.add(onLost);
        f((err, v) => {
          this.pending.delete(onLost);
          if (err) reject(fail(what, path, err));
          else resolve(v as T);
        });
      });

    await mkdirp(sftp, posix.dirname(remote), call);
    // Directories first (in order: parents before children), then files in parallel.
    for (const it of items) {
      if (it.type !== 'dir') continue;
      const exists = await call<ssh2.Stats | undefined>('inspect', it.remote, (cb) =>
        sftp.stat(it.remote, (err, st) => (err ? cb(undefined, undefined) : cb(undefined, st))),
      );
      if (exists === undefined) await call('create the directory', it.remote, (cb) => sftp.mkdir(it.remote, { mode: 0o700 }, cb));
      else if (!exists.isDirectory()) throw fail('create the directory', it.remote, new Error('a file of that name is in the way'));
      result.directories++;
    }
    const files = items.filter((i): i is Extract<Item, { type: 'file' }> => i.type === 'file');
    const links = items.filter((i): i is Extract<Item, { type: 'link' }> => i.type === 'link');
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        const f = files[next++]!;
        let last = 0;
        await call('write', f.remote, (cb) =>
          sftp.fastPut(
            f.local,
            f.remote,
            {
              mode: f.mode | 0o200,
              step: (written: number) => {
                done += written - last;
                last = written;
                options.onProgress?.(done, total);
              },
            },
            (err) => cb(err),
          ),
        );
        done += f.size - last;
        await call('set the mode of', f.remote, (cb) => sftp.setstat(f.remote, { mode: f.mode, atime: f.mtime, mtime: f.mtime }, cb));
        result.files++;
        result.bytes += f.size;
        options.onProgress?.(done, total);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.parallel ?? 8, files.length)) }, worker));
    for (const l of links) {
      // Replace whatever is there, as a copy would.
      await call<void>('remove', l.remote, (cb) => sftp.unlink(l.remote, () => cb(undefined)));
      await call('create the symlink', l.remote, (cb) => sftp.symlink(l.target, l.remote, cb));
      result.symlinks++;
    }
    // Directory modes last, deepest first, so a read-only directory is filled before it is closed.
    for (const it of [...items].reverse()) {
      if (it.type !== 'dir') continue;
      await call('set the mode of', it.remote, (cb) => sftp.setstat(it.remote, { mode: it.mode, atime: it.mtime, mtime: it.mtime }, cb));
    }
    return result;
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.ending = true;
    const sftp = this.sftpPromise;
    this.sftpPromise = undefined;
    if (sftp) await sftp.then((s) => s.end(), () => undefined);
    this.client.end();
    // Bounded: a peer that never closes its side does not hold us.
    const timer = setTimeout(() => this.client.destroy(), 2_000);
    await this.closedPromise;
    clearTimeout(timer);
  }
}

/** mkdir -p over SFTP. */
async function mkdirp(
  sftp: SFTPWrapper,
  dir: string,
  call: <T>(what: string, path: string, f: (cb: (err: Error | null | undefined, v?: T) => void) => void) => Promise<T>,
): Promise<void> {
  if (dir === '.' || dir === '/' || dir === '') return;
  const st = await call<ssh2.Stats | undefined>('inspect', dir, (cb) => sftp.stat(dir, (err, s) => (err ? cb(undefined, undefined) : cb(undefined, s))));
  if (st !== undefined) {
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
    return;
  }
  await mkdirp(sftp, posix.dirname(dir), call);
  await call('create the directory', dir, (cb) => sftp.mkdir(dir, (err) => cb(err)));
}
