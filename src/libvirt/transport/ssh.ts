/**
 * SSH transport (`qemu+ssh://user@host[:port]/system`), with the ssh2 library in place
 * of libvirt's spawned `ssh` binary. After authenticating and verifying the host key,
 * it runs on the far side what libvirt's own client runs there — `virt-ssh-helper URI`
 * or netcat on the daemon's unix socket — and returns that exec channel as the stream.
 *
 * URI parameters read here (libvirt's names and meanings):
 * - keyfile=PATH          private key (else ssh-agent at $SSH_AUTH_SOCK, else ~/.ssh/id_*)
 * - known_hosts=PATH      known hosts file (default ~/.ssh/known_hosts)
 * - known_hosts_verify=   normal (default: the key must be known) | auto (add unknown
 *                         keys to the file) | ignore
 * - no_verify=1           do not check the host key (as libvirt's ssh transport)
 * - proxy=                auto (virt-ssh-helper when installed there, else netcat) |
 *                         native (virt-ssh-helper only) | netcat
 * - netcat=PATH           the netcat binary on the far side (implies proxy=netcat)
 * - socket=PATH           the daemon socket on the far side (implies proxy=netcat)
 * - mode=                 legacy (libvirtd's socket) | direct (virtqemud's) | auto
 * - sshauth=              comma list of agent, privkey (password and keyboard-interactive
 *                         are not supported: vmenv never prompts)
 */
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, ClientChannel, ConnectConfig, ParsedKey } from 'ssh2';
import { LibvirtConnectError, LibvirtConnectionClosedError, LibvirtUriError } from '../errors.js';
import {
  boolParam,
  DEFAULT_SSH_PORT,
  localUserName,
  remoteSocketFor,
  sshHelperUri,
  type KnownHostsVerify,
  type LibvirtUri,
  type RemoteProxy,
} from '../uri.js';
import type { Dialer } from './dialer.js';
import { preferredHostKeyAlgorithms } from '../../ssh/host-key-algorithms.js';
import { checkHostKey, entryMatchesHost, keyFingerprint, keyTypeOfBlob, knownHostName, knownHostsLine, parseKnownHosts, shQuote, type KnownHostEntry } from '../../ssh/known-hosts.js';

const { Client, utils } = ssh2;

export const DEFAULT_SSH_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------------------
// The command run on the far side

export interface RemoteCommandOptions {
  proxy: RemoteProxy;
  /** The URI virt-ssh-helper is given (sshHelperUri). */
  helperUri: string;
  /** The daemon socket for netcat. */
  socket: string;
  /** The netcat binary (default nc). */
  netcat?: string;
  readonly?: boolean;
}

/**
 * What runs on the far side, equivalent to libvirt's virNetClientSSHHelperCommand:
 * - native: `virt-ssh-helper URI`
 * - netcat: `nc -U SOCKET`, passing `-q0` when this nc has `-q` (so it exits at EOF)
 * - auto:   virt-ssh-helper when on the PATH there, else the netcat form
 * all wrapped in `sh -c '…'` so the remote login shell does not matter.
 */
export function remoteHelperCommand(o: RemoteCommandOptions): string {
  const nc = shQuote(o.netcat ?? 'nc');
  const ncScript =
    `if ${nc} -q 2>&1 | grep "requires an argument" >/dev/null 2>&1; then ARG=-q0; else ARG=; fi; ` +
    `exec ${nc} $ARG -U ${shQuote(o.socket)}`;
  const helperScript = `exec virt-ssh-helper${o.readonly ? ' -r' : ''} ${shQuote(o.helperUri)}`;
  let script: string;
  switch (o.proxy) {
    case 'native':
      script = helperScript;
      break;
    case 'netcat':
      script = ncScript;
      break;
    case 'auto':
      script = `if command -v virt-ssh-helper >/dev/null 2>&1; then ${helperScript}; else ${ncScript}; fi`;
      break;
  }
  return `sh -c ${shQuote(script)}`;
}

/** libvirt's choice of proxy when the URI does not say (remote_driver.c). */
export function proxyForUri(u: LibvirtUri): RemoteProxy {
  const asked = u.params.proxy as RemoteProxy | undefined;
  if (asked !== undefined && !(asked === 'auto' && u.params.netcat !== undefined)) return asked;
  // A netcat path or an explicit socket means netcat: virt-ssh-helper takes neither.
  if (u.params.netcat !== undefined || u.params.socket !== undefined) return 'netcat';
  // The remote session socket's path depends on the remote user's environment.
  if (u.path === '/session') return 'native';
  return 'auto';
}

// ---------------------------------------------------------------------------
// The dialer

export interface SshDialerOptions {
  host: string;
  port?: number;
  /** Login name (default: the local user, as OpenSSH). */
  user?: string;
  /** The command to run there (remoteHelperCommand). */
  command: string;
  /** Private key file; when given, default keys are not tried. */
  keyFile?: string;
  passphrase?: string;
  /** ssh-agent socket; default $SSH_AUTH_SOCK; false to not use an agent. */
  agent?: string | false;
  /** Which methods, in order (libvirt's sshauth); default agent then keys. */
  authMethods?: Array<'agent' | 'privkey'>;
  knownHostsFile?: string;
  /** Default 'normal'. */
  verify?: KnownHostsVerify;
  timeoutMs?: number;
  home?: string;
  env?: Record<string, string | undefined>;
  /** Describes where the far side's daemon is, for messages. */
  remoteSocket?: string;
  /** Debug lines from ssh2. */
  debug?: (line: string) => void;
}

interface KeyCandidate {
  label: string;
  key: ParsedKey;
}

function loadKey(path: string, passphrase: string | undefined, explicit: boolean, target: string): KeyCandidate | undefined {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    if (!explicit) return undefined;
    throw new LibvirtConnectError(`cannot read the SSH key ${path}: ${(err as Error).message}`, target, { cause: err });
  }
  const parsed = utils.parseKey(data, passphrase);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error || key === undefined) {
    if (!explicit) return undefined;
    const encrypted = /encrypted|passphrase/i.test(key instanceof Error ? key.message : '');
    throw new LibvirtConnectError(
      encrypted
        ? `the SSH key ${path} is protected by a passphrase; load it into ssh-agent (ssh-add ${path}) and leave out keyfile=`
        : `cannot use the SSH key ${path}: ${key instanceof Error ? key.message : 'no key found'}`,
      target,
    );
  }
  if (!key.isPrivateKey()) {
    if (!explicit) return undefined;
    throw new LibvirtConnectError(`${path} holds a public key; keyfile= must name the private key`, target);
  }
  return { label: `key ${path}`, key };
}

const DEFAULT_KEY_NAMES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

function hostDisplay(host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return port === DEFAULT_SSH_PORT ? h : `${h}:${port}`;
}

/** Turn what the far side wrote on stderr, and how it exited, into a message. */
export function explainHelperFailure(
  stderr: string,
  code: number | null,
  signal: string | undefined,
  where: string,
  remoteSocket: string | undefined,
): string {
  const said = stderr.trim().split('\n').slice(-5).join(' | ');
  const tail = said ? ` (it said: ${said})` : '';
  if (code === 127 || /: not found|command not found/.test(said)) {
    if (/virt-ssh-helper/.test(said)) {
      return `virt-ssh-helper is not installed on ${where}; install libvirt's client tools there, or add proxy=netcat to the URI${tail}`;
    }
    if (/\bnc\b|netcat/.test(said)) {
      return `netcat (nc) is not installed on ${where}; install netcat-openbsd there, or use proxy=native with virt-ssh-helper${tail}`;
    }
    return `a command the libvirt proxy needs is missing on ${where}${tail}`;
  }
  if (/No such file or directory/i.test(said)) {
    return `no libvirt socket${remoteSocket ? ` at ${remoteSocket}` : ''} on ${where} — is libvirtd running there?${tail}`;
  }
  if (/Connection refused/i.test(said)) {
    return `the libvirt socket${remoteSocket ? ` ${remoteSocket}` : ''} on ${where} refuses connections (stale socket; restart libvirtd there)${tail}`;
  }
  if (/Permission denied/i.test(said)) {
    return `permission denied on the libvirt socket on ${where}; the SSH user must be in the "libvirt" group there${tail}`;
  }
  const how = signal ? `was killed by ${signal}` : `exited with status ${code ?? 'unknown'}`;
  return `the libvirt proxy on ${where} ${how}${tail}`;
}

/**
 * The exec channel as a plain Duplex. Reading and writing go straight through with
 * backpressure; ending it sends EOF; destroying it (or the far side closing) closes
 * the SSH connection. When the far side exits non-zero, the stream is destroyed with
 * an error built from its stderr.
 */
class SshExecStream extends Duplex {
  private stderrText = '';
  private exitCode: number | null = null;
  private exitSignal: string | undefined;
  private sawData = false;
  private pendingWrite: ((err?: Error | null) => void) | null = null;
  private channelClosed = false;

  constructor(
    private readonly client: InstanceType<typeof Client>,
    private readonly channel: ClientChannel,
    private readonly where: string,
    private readonly target: string,
    private readonly remoteSocket: string | undefined,
  ) {
    super({ allowHalfOpen: false });
    channel.on('data', (d: Buffer) => {
      this.sawData = true;
      if (!this.push(d)) channel.pause();
    });
    channel.stderr.on('data', (d: Buffer) => {
      if (this.stderrText.length < 8192) this.stderrText += d.toString('utf8');
    });
    channel.on('exit', ((code: number | null, signal?: string) => {
      this.exitCode = code;
      this.exitSignal = signal ?? undefined;
    }) as (code: number) => void);
    channel.on('drain', () => {
      const cb = this.pendingWrite;
      this.pendingWrite = null;
      cb?.();
    });
    channel.on('close', () => this.onChannelClose());
    client.on('error', (err: Error) => {
      if (!this.destroyed) {
        this.destroy(new LibvirtConnectionClosedError(`the SSH connection to ${where} failed: ${err.message}`, { cause: err }));
      }
    });
    client.on('close', () => this.onChannelClose());
  }

  private onChannelClose(): void {
    if (this.channelClosed) return;
    this.channelClosed = true;
    const cb = this.pendingWrite;
    this.pendingWrite = null;
    this.client.end();
    const failed = (this.exitCode !== null && this.exitCode !== 0) || this.exitSignal !== undefined;
    if (failed && !this.destroyed) {
      const msg = explainHelperFailure(this.stderrText, this.exitCode, this.exitSignal, this.where, this.remoteSocket);
      const err = this.sawData
        ? new LibvirtConnectionClosedError(`the connection over SSH closed: ${msg}`)
        : new LibvirtConnectError(msg, this.target);
      cb?.(err);
      this.destroy(err);
      return;
    }
    cb?.(new LibvirtConnectionClosedError(`the SSH channel to ${this.where} closed`));
    this.push(null);
  }

  /** What the far side has written to stderr so far. */
  get remoteStderr(): string {
    return this.stderrText;
  }

  override _read(): void {
    if (this.channel.isPaused()) this.channel.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.channelClosed) {
      cb(new LibvirtConnectionClosedError(`the SSH channel to ${this.where} is closed`));
      return;
    }
    if (this.channel.write(chunk)) cb();
    else this.pendingWrite = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.channelClosed) this.channel.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.channelClosed = true;
    try {
      this.channel.close();
    } catch {
      // already closed
    }
    this.client.end();
    cb(err);
  }
}

/** Dial libvirt over SSH: authenticate, verify the host key, exec the proxy command. */
export function sshDialer(o: SshDialerOptions): Dialer {
  const port = o.port ?? DEFAULT_SSH_PORT;
  const user = o.user ?? localUserName();
  const where = `${user}@${hostDisplay(o.host, port)}`;
  const target = `ssh ${where}`;
  const env = o.env ?? process.env;
  const home = o.home ?? env.HOME ?? homedir();
  const verify: KnownHostsVerify = o.verify ?? 'normal';
  const knownHostsFile = o.knownHostsFile ?? join(home, '.ssh', 'known_hosts');

  return {
    describe: () => target,
    dial(signal?: AbortSignal): Promise<Duplex> {
      return new Promise<Duplex>((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        // Authentication candidates, in order.
        const tried: string[] = [];
        const candidates: Array<() => AnyAuthMethod | undefined> = [];
        const methods = o.authMethods ?? ['agent', 'privkey'];
        const agentSock = o.agent === false ? undefined : (o.agent ?? env.SSH_AUTH_SOCK);
        try {
          const keys: KeyCandidate[] = [];
          if (o.keyFile !== undefined) {
            keys.push(loadKey(o.keyFile, o.passphrase, true, target)!);
          } else {
            for (const name of DEFAULT_KEY_NAMES) {
              const k = loadKey(join(home, '.ssh', name), o.passphrase, false, target);
              if (k) keys.push(k);
            }
          }
          // An explicit key file goes first; otherwise the agent first, as libvirt.
          const order = o.keyFile !== undefined ? ['privkey', ...methods.filter((m) => m !== 'privkey')] : methods;
          for (const m of order) {
            if (!methods.includes(m as 'agent' | 'privkey')) continue;
            if (m === 'agent' && agentSock) {
              candidates.push(() => {
                tried.push(`ssh-agent (${agentSock})`);
                return { type: 'agent', username: user, agent: agentSock };
              });
            }
            if (m === 'privkey') {
              for (const k of keys) {
                candidates.push(() => {
                  tried.push(k.label);
                  return { type: 'publickey', username: user, key: k.key };
                });
              }
            }
          }
        } catch (err) {
          reject(err);
          return;
        }
        if (candidates.length === 0) {
          reject(
            new LibvirtConnectError(
              `no way to log in to ${where}: no keyfile= in the URI, no ssh-agent ($SSH_AUTH_SOCK), ` +
                `and no key at ${join(home, '.ssh')}/{${DEFAULT_KEY_NAMES.join(',')}}`,
              target,
            ),
          );
          return;
        }

        // known_hosts, read once per dial.
        let entries: KnownHostEntry[] = [];
        if (verify !== 'ignore' && existsSync(knownHostsFile)) {
          try {
            entries = parseKnownHosts(readFileSync(knownHostsFile, 'utf8'));
          } catch (err) {
            reject(new LibvirtConnectError(`cannot read ${knownHostsFile}: ${(err as Error).message}`, target, { cause: err }));
            return;
          }
        }
        const knownTypes = [
          ...new Set(
            entries
              .filter((e) => e.marker === undefined && entryMatchesHost(e, o.host, port))
              .map((e) => keyTypeOfBlob(e.key)),
          ),
        ];

        const client = new Client();
        let settled = false;
        let hostKeyProblem: string | undefined;
        const timer = setTimeout(() => {
          fail(new LibvirtConnectError(`timed out after ${((o.timeoutMs ?? DEFAULT_SSH_TIMEOUT_MS) / 1000).toFixed(1)} s connecting to ${target}`, target));
        }, o.timeoutMs ?? DEFAULT_SSH_TIMEOUT_MS);
        const onAbort = (): void => fail(signal?.reason ?? new Error('aborted'));
        signal?.addEventListener('abort', onAbort, { once: true });
        const cleanup = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          client.removeListener('error', onError);
          client.removeListener('ready', onReady);
          client.removeListener('close', onClose);
        };
        function fail(err: unknown): void {
          if (settled) return;
          settled = true;
          cleanup();
          client.end();
          client.destroy();
          reject(err);
        }
        const onError = (err: Error & { level?: string; code?: string }): void => {
          if (hostKeyProblem !== undefined) {
            fail(new LibvirtConnectError(hostKeyProblem, target, { cause: err }));
            return;
          }
          let msg: string;
          switch (err.level) {
            case 'client-authentication':
              msg =
                `SSH authentication failed for ${where} (tried: ${tried.join(', ') || 'nothing'}). ` +
                `Check that the public key is in ~${user}/.ssh/authorized_keys there`;
              break;
            case 'client-timeout':
              msg = `timed out waiting for the SSH handshake with ${hostDisplay(o.host, port)}`;
              break;
            case 'client-dns':
              msg = `cannot resolve the host name "${o.host}"`;
              break;
            case 'client-socket':
              msg =
                err.code === 'ECONNREFUSED'
                  ? `nothing accepts SSH connections at ${hostDisplay(o.host, port)} (is sshd running there?)`
                  : `cannot connect to ${hostDisplay(o.host, port)}: ${err.message}`;
              break;
            case 'agent':
              msg = `the ssh-agent at ${agentSock} failed: ${err.message}`;
              break;
            default:
              msg = `the SSH connection to ${where} failed: ${err.message}`;
          }
          fail(new LibvirtConnectError(msg, target, { cause: err }));
        };
        const onClose = (): void => {
          fail(
            new LibvirtConnectError(
              hostKeyProblem ?? `the SSH connection to ${where} closed during setup`,
              target,
            ),
          );
        };
        const onReady = (): void => {
          client.exec(o.command, (err, channel) => {
            if (settled) {
              channel?.close();
              return;
            }
            if (err) {
              fail(new LibvirtConnectError(`${where} refused to run the libvirt proxy command: ${err.message}`, target, { cause: err }));
              return;
            }
            settled = true;
            cleanup();
            const stream = new SshExecStream(client, channel, where, target, o.remoteSocket);
            resolve(stream);
          });
        };
        client.on('error', onError);
        client.once('ready', onReady);
        client.once('close', onClose);

        const hostVerifier = (key: Buffer, done: (ok: boolean) => void): void => {
          if (verify === 'ignore') {
            done(true);
            return;
          }
          const res = checkHostKey(entries, o.host, port, key);
          const fp = `${keyFingerprint(key)} (${keyTypeOfBlob(key)})`;
          const name = knownHostName(o.host, port);
          switch (res.status) {
            case 'match':
              done(true);
              return;
            case 'revoked':
              hostKeyProblem = `the SSH host key of ${name} (${fp}) is marked @revoked in ${knownHostsFile} line ${res.entry.line}; refusing to connect`;
              done(false);
              return;
            case 'mismatch':
              hostKeyProblem =
                `the SSH host key of ${name} has CHANGED: ${knownHostsFile} line ${res.entries.map((e) => e.line).join(', ')} ` +
                `holds a different ${keyTypeOfBlob(key)} key, and the host offered ${fp}. ` +
                `Someone may be intercepting the connection. If the host was reinstalled, remove the old key ` +
                `(ssh-keygen -R '${name}' -f ${knownHostsFile}) and connect again`;
              done(false);
              return;
            case 'unknown':
              if (verify === 'auto') {
                mkdir(dirname(knownHostsFile), { recursive: true, mode: 0o700 })
                  .then(() => appendFile(knownHostsFile, `${knownHostsLine(o.host, port, key)}\n`, { mode: 0o600 }))
                  .then(
                    () => done(true),
                    (e: Error) => {
                      hostKeyProblem = `cannot add the host key of ${name} to ${knownHostsFile}: ${e.message}`;
                      done(false);
                    },
                  );
                return;
              }
              hostKeyProblem =
                `the SSH host key of ${name} is not known: it is not in ${knownHostsFile}` +
                (res.otherTypes.length > 0 ? ` (which has only ${res.otherTypes.join(', ')} keys for it)` : '') +
                `. The host offered ${fp}. Check that fingerprint, then add the key ` +
                `(ssh-keyscan${port === DEFAULT_SSH_PORT ? '' : ` -p ${port}`} ${o.host} >> ${knownHostsFile}), ` +
                `or add known_hosts_verify=auto to the URI to accept it on first use, or no_verify=1 to skip the check`;
              done(false);
              return;
          }
        };

        const cfg: ConnectConfig = {
          host: o.host,
          port,
          username: user,
          readyTimeout: o.timeoutMs ?? DEFAULT_SSH_TIMEOUT_MS,
          hostVerifier,
          algorithms: { serverHostKey: preferredHostKeyAlgorithms(knownTypes) },
          authHandler: (_left, _partial, next) => {
            const c = candidates.shift();
            next(c ? c()! : (false as unknown as AnyAuthMethod));
          },
          keepaliveInterval: 0,
        };
        if (o.debug) cfg.debug = o.debug;
        try {
          client.connect(cfg);
        } catch (err) {
          fail(new LibvirtConnectError(`cannot start the SSH connection to ${where}: ${(err as Error).message}`, target, { cause: err }));
        }
      });
    },
  };
}

export interface SshUriDialerOptions {
  env?: Record<string, string | undefined>;
  home?: string;
  timeoutMs?: number;
  passphrase?: string;
  /** Open the daemon read-only (virt-ssh-helper -r). */
  readonly?: boolean;
  debug?: (line: string) => void;
}

/** An SSH dialer configured from a `+ssh` URI's host, user, port and parameters. */
export function sshDialerForUri(u: LibvirtUri, opts: SshUriDialerOptions = {}): Dialer {
  const proxy = proxyForUri(u);
  const socket = remoteSocketFor(u);
  const command = remoteHelperCommand({
    proxy,
    helperUri: sshHelperUri(u),
    socket,
    ...(u.params.netcat !== undefined ? { netcat: u.params.netcat } : {}),
    ...(opts.readonly ? { readonly: true } : {}),
  });
  let verify: KnownHostsVerify = (u.params.known_hosts_verify as KnownHostsVerify | undefined) ?? 'normal';
  if (boolParam(u, 'no_verify')) verify = 'ignore';
  let authMethods: Array<'agent' | 'privkey'> | undefined;
  if (u.params.sshauth !== undefined) {
    const listed = u.params.sshauth.split(',').map((s) => s.trim().toLowerCase());
    authMethods = listed.filter((m): m is 'agent' | 'privkey' => m === 'agent' || m === 'privkey');
    if (authMethods.length === 0) {
      throw new LibvirtUriError(
        `Invalid libvirt URI "${u.raw}": sshauth=${u.params.sshauth} leaves no method vmenv can use ` +
          `(it supports agent and privkey; it never prompts for passwords)`,
        u.raw,
      );
    }
  }
  const o: SshDialerOptions = {
    host: u.host ?? 'localhost',
    command,
    verify,
  };
  // With virt-ssh-helper the far side picks the socket itself; its own message names it.
  if (proxy === 'netcat') o.remoteSocket = socket;
  if (u.port !== undefined) o.port = u.port;
  if (u.user !== undefined) o.user = u.user;
  if (u.params.keyfile !== undefined) o.keyFile = u.params.keyfile;
  if (u.params.known_hosts !== undefined) o.knownHostsFile = u.params.known_hosts;
  if (authMethods) o.authMethods = authMethods;
  if (opts.env) o.env = opts.env;
  if (opts.home) o.home = opts.home;
  if (opts.timeoutMs !== undefined) o.timeoutMs = opts.timeoutMs;
  if (opts.passphrase !== undefined) o.passphrase = opts.passphrase;
  if (opts.debug) o.debug = opts.debug;
  return sshDialer(o);
}
