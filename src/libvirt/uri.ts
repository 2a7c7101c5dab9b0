/**
 * libvirt connection URIs, parsed the way libvirt's remote driver reads them:
 *
 *   driver[+transport]://[user@][host][:port]/path[?param=value&...]
 *
 * - no transport and no host   → a unix socket on this machine (`qemu:///system`)
 * - no transport but a host    → TLS (`qemu://host/system`), as in libvirt
 * - `+unix` `+ssh` `+tcp` `+tls` (and `+libssh`/`+libssh2`, which vmenv serves
 *   with its own SSH client, so they mean the same as `+ssh`)
 *
 * Query parameters named below are read by the *client* and are never sent to the
 * daemon: the name sent in the remote open call is the URI without transport, host,
 * user, port and those parameters (`remoteOpenName`).
 */
import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { LibvirtUriError } from './errors.js';
import { probeUnixSocket } from './transport/unix.js';

export type LibvirtTransport = 'unix' | 'ssh' | 'tcp' | 'tls';

export interface LibvirtUri {
  /** The text as given (trimmed). */
  raw: string;
  /** The scheme as written, lower-cased: `qemu`, `qemu+ssh`, … */
  scheme: string;
  /** The hypervisor driver: `qemu`, `test`, … */
  driver: 'qemu' | (string & {});
  transport: LibvirtTransport;
  user?: string;
  /** Host name or address; IPv6 without brackets. */
  host?: string;
  port?: number;
  /** The path as written, e.g. `/system`. */
  path: string;
  /** The path without its leading slash: `system`, `session`, … */
  instance: 'system' | 'session' | (string & {});
  /**
   * Query parameters, decoded. Names libvirt reads itself (`socket`, `keyfile`, …) are
   * stored lower-cased, since libvirt matches them without regard to case; other names
   * are kept as written. When a name repeats, the last value wins (as in libvirt).
   */
  params: Record<string, string>;
  /** Every parameter in order, as written (decoded), for faithful re-formatting. */
  query: ReadonlyArray<readonly [string, string]>;
  fragment?: string;
}

/** Parameters the libvirt client consumes; never passed on to the daemon. */
export const CLIENT_PARAMS: readonly string[] = [
  'name',
  'command',
  'socket',
  'auth',
  'sshauth',
  'netcat',
  'keyfile',
  'pkipath',
  'known_hosts',
  'known_hosts_verify',
  'tls_priority',
  'mode',
  'proxy',
  'no_sanity',
  'no_verify',
  'no_tty',
  'authfile',
];
const clientParamSet = new Set(CLIENT_PARAMS);

/** Which daemon socket to use: `legacy` = libvirtd, `direct` = the per-driver daemon (virtqemud). */
export type RemoteMode = 'auto' | 'legacy' | 'direct';
/** What runs on the far side of an SSH connection: virt-ssh-helper (`native`), `netcat`, or `auto`. */
export type RemoteProxy = 'auto' | 'netcat' | 'native';
/** How to treat the SSH host key: `normal` (must be known), `auto` (add unknown keys), `ignore`. */
export type KnownHostsVerify = 'normal' | 'auto' | 'ignore';

const enumParams: Record<string, readonly string[]> = {
  mode: ['auto', 'legacy', 'direct'],
  proxy: ['auto', 'netcat', 'native'],
  known_hosts_verify: ['normal', 'auto', 'ignore'],
};
const boolParams = ['no_verify', 'no_tty', 'no_sanity'];

export const DEFAULT_TCP_PORT = 16509;
export const DEFAULT_TLS_PORT = 16514;
export { DEFAULT_SSH_PORT } from '../ssh/known-hosts.js';

const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s;

function fail(uri: string, what: string): never {
  throw new LibvirtUriError(`Invalid libvirt URI "${uri}": ${what}`, uri);
}

function decode(uri: string, part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return fail(uri, `bad %-escape in the ${what} "${part}"`);
  }
}

/** Parse a libvirt URI. Throws LibvirtUriError naming what is wrong. */
export function parseLibvirtUri(input: string): LibvirtUri {
  const raw = input.trim();
  if (raw === '') throw new LibvirtUriError('The libvirt URI is empty; use e.g. qemu:///system', input);
  if (/\s/.test(raw)) fail(raw, 'it contains whitespace');

  const m = SCHEME_RE.exec(raw);
  if (!m) fail(raw, 'it has no scheme; write it like qemu:///system or qemu+ssh://user@host/system');
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (!rest.startsWith('//')) {
    fail(raw, `expected "//" after "${scheme}:" (e.g. ${scheme}:///system for this machine)`);
  }

  // Split driver and transport.
  const plus = scheme.indexOf('+');
  const driver = plus < 0 ? scheme : scheme.slice(0, plus);
  const transportName = plus < 0 ? undefined : scheme.slice(plus + 1);
  if (driver === '') fail(raw, 'the driver name before "+" is empty');

  // Split the hierarchical part.
  let afterSlashes = rest.slice(2);
  let fragment: string | undefined;
  const hashAt = afterSlashes.indexOf('#');
  if (hashAt >= 0) {
    fragment = decode(raw, afterSlashes.slice(hashAt + 1), 'fragment');
    afterSlashes = afterSlashes.slice(0, hashAt);
  }
  let queryText = '';
  const qAt = afterSlashes.indexOf('?');
  if (qAt >= 0) {
    queryText = afterSlashes.slice(qAt + 1);
    afterSlashes = afterSlashes.slice(0, qAt);
  }
  const slashAt = afterSlashes.indexOf('/');
  const authority = slashAt < 0 ? afterSlashes : afterSlashes.slice(0, slashAt);
  const rawPath = slashAt < 0 ? '' : afterSlashes.slice(slashAt);

  // Authority: [user@]host[:port]
  let user: string | undefined;
  let hostPort = authority;
  const atAt = authority.lastIndexOf('@');
  if (atAt >= 0) {
    const userText = authority.slice(0, atAt);
    hostPort = authority.slice(atAt + 1);
    if (userText.includes(':')) {
      fail(raw, 'a password in the URI is not supported; use an SSH key or an SSH agent');
    }
    user = decode(raw, userText, 'user name');
    if (user === '') fail(raw, 'the user name before "@" is empty');
  }
  let host: string | undefined;
  let portText: string | undefined;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) fail(raw, 'an IPv6 address opened with "[" is not closed with "]"');
    host = decode(raw, hostPort.slice(1, close), 'IPv6 address');
    if (!/^[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?$/.test(host) || !host.includes(':')) {
      fail(raw, `"[${host}]" is not an IPv6 address`);
    }
    const after = hostPort.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) fail(raw, `unexpected "${after}" after "]"`);
      portText = after.slice(1);
    }
  } else {
    const colon = hostPort.lastIndexOf(':');
    if (colon >= 0) {
      portText = hostPort.slice(colon + 1);
      host = hostPort.slice(0, colon);
    } else {
      host = hostPort;
    }
    if (host !== '') {
      host = decode(raw, host, 'host name');
      if (!/^[A-Za-z0-9._-]+$/.test(host)) fail(raw, `"${host}" is not a valid host name`);
    }
  }
  if (host === '') host = undefined;
  let port: number | undefined;
  if (portText !== undefined && portText !== '') {
    if (!/^\d+$/.test(portText)) fail(raw, `the port "${portText}" is not a number`);
    port = Number(portText);
    if (port < 1 || port > 65535) fail(raw, `the port ${portText} is out of range (1-65535)`);
  }
  if (host === undefined && (port !== undefined || user !== undefined)) {
    fail(raw, 'a user or port is given but no host');
  }

  // Transport, as libvirt's remoteSplitURIScheme decides it.
  let transport: LibvirtTransport;
  switch (transportName) {
    case undefined:
      transport = host === undefined ? 'unix' : 'tls';
      break;
    case 'unix':
      if (host !== undefined) {
        fail(raw, `the unix transport reaches only this machine, but a host "${host}" is given; use ${driver}+ssh://${authority}${rawPath} for a remote host`);
      }
      transport = 'unix';
      break;
    case 'ssh':
    case 'libssh':
    case 'libssh2':
      transport = 'ssh';
      break;
    case 'tcp':
      transport = 'tcp';
      break;
    case 'tls':
      transport = 'tls';
      break;
    case 'ext':
      return fail(raw, 'the "ext" transport (an external command) is not supported by vmenv; use +ssh');
    default:
      return fail(raw, `unknown transport "+${transportName}" (vmenv knows unix, ssh, tcp, tls)`);
  }

  // Path.
  const path = decode(raw, rawPath, 'path');
  const instance = path.replace(/^\/+/, '');
  if (driver === 'qemu') {
    if (instance === '') {
      fail(raw, `it names no instance; add /system or /session (e.g. ${scheme}://${authority}/system)`);
    }
    if (instance !== 'system' && instance !== 'session') {
      fail(raw, `the qemu driver has no instance "${path}"; use /system or /session`);
    }
  }

  // Query.
  const query: Array<[string, string]> = [];
  const params: Record<string, string> = {};
  if (queryText !== '') {
    for (const section of queryText.split(/[&;]/)) {
      if (section === '') continue;
      const eq = section.indexOf('=');
      if (eq === 0) continue; // "=value": ignored, as libvirt does
      const rawName = eq < 0 ? section : section.slice(0, eq);
      const rawValue = eq < 0 ? '' : section.slice(eq + 1);
      const name = decode(raw, rawName, 'parameter name');
      const value = decode(raw, rawValue, `value of "${name}"`);
      query.push([name, value]);
      const lower = name.toLowerCase();
      params[clientParamSet.has(lower) ? lower : name] = value;
    }
  }
  for (const [name, allowed] of Object.entries(enumParams)) {
    const v = params[name];
    if (v !== undefined && !allowed.includes(v.toLowerCase())) {
      fail(raw, `${name}=${v} is not one of ${allowed.join(', ')}`);
    }
    if (v !== undefined) params[name] = v.toLowerCase();
  }
  for (const name of boolParams) {
    const v = params[name];
    if (v !== undefined && !/^-?\d+$/.test(v)) fail(raw, `${name}=${v} must be a number (0 or 1)`);
  }
  if (params.socket !== undefined && params.socket === '') fail(raw, 'socket= is empty');
  if (params.socket !== undefined && (transport === 'tcp' || transport === 'tls')) {
    fail(raw, `socket= makes no sense with the ${transport} transport`);
  }
  if (params.mode === 'direct' && transport !== 'unix' && transport !== 'ssh') {
    fail(raw, `mode=direct needs the unix or ssh transport, not ${transport}`);
  }
  if (params.proxy === 'native' && params.netcat !== undefined) {
    fail(raw, 'netcat= cannot be used with proxy=native');
  }
  if ((params.proxy !== undefined || params.netcat !== undefined) && transport !== 'ssh') {
    fail(raw, `${params.proxy !== undefined ? 'proxy' : 'netcat'}= only applies to the ssh transport`);
  }

  const out: LibvirtUri = { raw, scheme, driver, transport, path, instance, params, query };
  if (user !== undefined) out.user = user;
  if (host !== undefined) out.host = host;
  if (port !== undefined) out.port = port;
  if (fragment !== undefined) out.fragment = fragment;
  return out;
}

/** Percent-encode what must be, keeping the characters URIs commonly carry readable. */
function encodeComponent(s: string, keep = ''): string {
  return s.replace(/[^A-Za-z0-9\-._~!$'()*,:@/]/g, (c) =>
    keep.includes(c) ? c : encodeURIComponent(c),
  );
}
function encodeValue(s: string): string {
  return encodeURIComponent(s).replace(/%2F/g, '/').replace(/%3A/g, ':').replace(/%2C/g, ',');
}

function formatQuery(pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs.map(([n, v]) => `${encodeComponent(n)}=${encodeValue(v)}`).join('&');
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host.replace(/%/g, '%25')}]` : host;
}

/**
 * The URI as text, for display and for storing: `qemu+ssh://root@h:2222/system?keyfile=…`.
 * Re-parsing the result gives the same URI.
 */
export function formatLibvirtUri(u: LibvirtUri): string {
  let s = `${u.scheme}://`;
  if (u.user !== undefined) s += `${encodeComponent(u.user).replace(/[:@]/g, encodeURIComponent)}@`;
  if (u.host !== undefined) s += formatHost(u.host);
  if (u.port !== undefined) s += `:${u.port}`;
  s += encodeComponent(u.path);
  if (u.query.length > 0) s += `?${formatQuery(u.query)}`;
  if (u.fragment !== undefined) s += `#${encodeComponent(u.fragment)}`;
  return s;
}

function withoutParams(u: LibvirtUri, keep: ReadonlySet<string>): string {
  const pairs = u.query.filter(([n]) => {
    const lower = n.toLowerCase();
    return !clientParamSet.has(lower) || keep.has(lower);
  });
  let s = `${u.driver}://${encodeComponent(u.path)}`;
  if (pairs.length > 0) s += `?${formatQuery(pairs)}`;
  if (u.fragment !== undefined) s += `#${encodeComponent(u.fragment)}`;
  return s;
}

/**
 * The name libvirt's remote driver sends in REMOTE_PROC_CONNECT_OPEN: the URI with
 * the transport, user, host and port removed and with the client-side parameters
 * stripped, e.g. `qemu+ssh://h/system?keyfile=x` → `qemu:///system`. A `name=`
 * parameter overrides it; the `remote` driver sends "" so the daemon picks.
 */
export function remoteOpenName(u: LibvirtUri): string {
  const named = u.params.name;
  if (named !== undefined) return named;
  if (u.driver === 'remote') return '';
  return withoutParams(u, new Set());
}

/**
 * The URI handed to `virt-ssh-helper` on the far side of an SSH connection: like
 * remoteOpenName but keeping `mode` and `socket`, which the helper itself reads.
 */
export function sshHelperUri(u: LibvirtUri): string {
  return withoutParams(u, new Set(['mode', 'socket']));
}

/** True when the parameter is set to a non-zero number (libvirt's boolean parameters). */
export function boolParam(u: LibvirtUri, name: string): boolean {
  const v = u.params[name];
  return v !== undefined && Number(v) !== 0;
}

// ---------------------------------------------------------------------------
// Socket paths

export interface SocketEnv {
  /** Effective uid; root's /session is the system daemon (libvirt's rule). */
  uid: number;
  env: Record<string, string | undefined>;
  /** Home directory, for ~/.cache when XDG variables are unset. */
  home: string;
  /** Overrides $XDG_RUNTIME_DIR (the per-user runtime directory). */
  runtimeDir?: string;
  /** Does a file exist here? Injectable for tests. */
  exists?: (path: string) => boolean;
  /** Is this daemon binary installed? Used to pick direct vs legacy when no socket exists yet. */
  haveDaemon?: (name: string) => boolean;
}

export const SYSTEM_SOCKET_DIR = '/run/libvirt';
export const SYSTEM_SOCKET = `${SYSTEM_SOCKET_DIR}/libvirt-sock`;

/**
 * The per-user runtime directory libvirt uses (virGetUserRuntimeDirectory):
 * `$XDG_RUNTIME_DIR/libvirt`, else GLib's fallback, the user cache directory:
 * `$XDG_CACHE_HOME/libvirt`, else `~/.cache/libvirt`. Note the result does not
 * depend on the uid: root gets `/run/user/0/libvirt` too, but see `usesUserDaemon`.
 */
export function userRuntimeDir(e: Pick<SocketEnv, 'env' | 'home' | 'runtimeDir'>): string {
  const rt = e.runtimeDir ?? nonEmpty(e.env.XDG_RUNTIME_DIR);
  if (rt !== undefined) return join(rt, 'libvirt');
  const cache = nonEmpty(e.env.XDG_CACHE_HOME) ?? join(e.home, '.cache');
  return join(cache, 'libvirt');
}

/**
 * Does this URI talk to a per-user daemon? libvirt's rule (remoteGetURIDaemonInfo):
 * the path is `/session` *and the caller is not root*. For root, `qemu:///session`
 * is served by the system daemon, whose qemu driver accepts both paths.
 */
/** Whether the URI names a session instance (`qemu:///session`): QEMU runs as the user. */
export function isSessionUri(uri: string): boolean {
  return parsedOrUndefined(uri)?.instance === 'session';
}

/** Whether the daemon behind the URI runs on this host, so that its files (logs, leases) are ours to read. */
export function isLocalUri(uri: string): boolean {
  const u = parsedOrUndefined(uri);
  return u !== undefined && u.transport === 'unix' && (u.host === undefined || u.host === '' || u.host === 'localhost');
}

function parsedOrUndefined(uri: string): LibvirtUri | undefined {
  try {
    return parseLibvirtUri(uri);
  } catch {
    return undefined;
  }
}

export function usesUserDaemon(u: LibvirtUri, uid: number): boolean {
  return u.path === '/session' && uid !== 0;
}

export interface UnixSocketChoice {
  /** The socket to connect to. */
  path: string;
  /** The daemon that serves it: `libvirtd` (legacy) or `virt<driver>d` (direct). */
  daemon: string;
  mode: 'legacy' | 'direct';
  /** The instance is a per-user daemon (session, non-root). */
  user: boolean;
  /** The socket came from `?socket=`. */
  explicit: boolean;
}

/**
 * The unix socket for a local URI, as libvirt's remoteGetUNIXSocket picks it:
 * `?socket=` wins; else for a per-user daemon `<runtime dir>/<name>-sock`, for the
 * system daemon `/run/libvirt/<name>-sock`, where the name is `libvirt` (legacy,
 * libvirtd) or `virtqemud` (direct, the modular daemon). In `mode=auto` the direct
 * socket is used when it exists, else the legacy one when it exists, else the one
 * whose daemon is installed (virtqemud preferred), else legacy.
 */
export function unixSocketFor(u: LibvirtUri, e: SocketEnv): UnixSocketChoice {
  const user = usesUserDaemon(u, e.uid);
  const directName = `virt${u.driver}d`;
  const explicit = u.params.socket;
  const dir = user ? userRuntimeDir(e) : SYSTEM_SOCKET_DIR;
  const legacyPath = join(dir, 'libvirt-sock');
  const directPath = join(dir, `${directName}-sock`);
  const exists = e.exists ?? existsSync;
  let mode: 'legacy' | 'direct';
  const asked = (u.params.mode ?? 'auto') as RemoteMode;
  if (asked !== 'auto') {
    mode = asked;
  } else if (explicit !== undefined) {
    mode = explicit.endsWith(`/${directName}-sock`) ? 'direct' : 'legacy';
  } else if (exists(directPath)) {
    mode = 'direct';
  } else if (exists(legacyPath)) {
    mode = 'legacy';
  } else if (e.haveDaemon?.(directName)) {
    mode = 'direct';
  } else {
    mode = 'legacy';
  }
  const path = explicit ?? (mode === 'direct' ? directPath : legacyPath);
  return {
    path,
    daemon: mode === 'direct' ? directName : 'libvirtd',
    mode,
    user,
    explicit: explicit !== undefined,
  };
}

/**
 * The socket path on the *remote* side of an SSH connection when netcat is used:
 * `?socket=`, else the system daemon's socket for the mode (legacy unless
 * `mode=direct`), as libvirt does for non-unix transports.
 */
export function remoteSocketFor(u: LibvirtUri): string {
  if (u.params.socket !== undefined) return u.params.socket;
  // libvirt builds this from LOCALSTATEDIR; /var/run is the portable spelling.
  return u.params.mode === 'direct' ? `/var/run/libvirt/virt${u.driver}d-sock` : '/var/run/libvirt/libvirt-sock';
}

// ---------------------------------------------------------------------------
// Default URI

export type UriSource = 'config' | 'VMENV_LIBVIRT_URI' | 'LIBVIRT_DEFAULT_URI' | 'system-socket' | 'session-default';

export interface ResolvedUri {
  uri: LibvirtUri;
  source: UriSource;
  /** One line for `vmenv doctor`: why this URI was chosen. */
  reason: string;
  /** For a local (unix) URI: the socket it uses, by the rules of unixSocketFor. */
  socket?: string;
}

export interface ResolveUriOptions {
  /** The `uri` from vmenv.yaml, if any. */
  configured?: string | undefined;
  env?: Record<string, string | undefined>;
  uid?: number;
  home?: string;
  runtimeDir?: string;
  /** Is a daemon listening on this unix socket? Injectable for tests. */
  probe?: (socketPath: string) => Promise<boolean>;
  /** Candidate system sockets, in order; default the direct and legacy qemu sockets. */
  systemSockets?: string[];
  /** Passed to unixSocketFor when reporting the socket of a local URI. */
  exists?: (path: string) => boolean;
  haveDaemon?: (name: string) => boolean;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

/**
 * Which libvirt URI vmenv uses: the configured one, else `$VMENV_LIBVIRT_URI`, else
 * `$LIBVIRT_DEFAULT_URI`, else `qemu:///system` when a system daemon answers on its
 * socket, else `qemu:///session`. A set-but-invalid URI is an error (not skipped).
 */
export async function resolveUri(opts: ResolveUriOptions = {}): Promise<ResolvedUri> {
  const r = await pickUri(opts);
  if (r.uri.transport === 'unix') {
    const env = opts.env ?? process.env;
    const se: SocketEnv = {
      uid: opts.uid ?? processSocketEnv().uid,
      env,
      home: opts.home ?? env.HOME ?? homedir(),
    };
    if (opts.runtimeDir !== undefined) se.runtimeDir = opts.runtimeDir;
    if (opts.exists !== undefined) se.exists = opts.exists;
    if (opts.haveDaemon !== undefined) se.haveDaemon = opts.haveDaemon;
    r.socket = unixSocketFor(r.uri, se).path;
  }
  return r;
}

async function pickUri(opts: ResolveUriOptions): Promise<ResolvedUri> {
  const env = opts.env ?? process.env;
  const configured = nonEmpty(opts.configured);
  if (configured !== undefined) {
    return { uri: parseLibvirtUri(configured), source: 'config', reason: 'set by "uri" in vmenv.yaml' };
  }
  for (const name of ['VMENV_LIBVIRT_URI', 'LIBVIRT_DEFAULT_URI'] as const) {
    const v = nonEmpty(env[name]);
    if (v !== undefined) {
      let uri: LibvirtUri;
      try {
        uri = parseLibvirtUri(v);
      } catch (err) {
        if (err instanceof LibvirtUriError) {
          throw new LibvirtUriError(`${err.message} (from $${name})`, err.uri);
        }
        throw err;
      }
      return { uri, source: name, reason: `set by $${name}` };
    }
  }
  const probe = opts.probe ?? ((p: string) => probeUnixSocket(p));
  const sockets = opts.systemSockets ?? [`${SYSTEM_SOCKET_DIR}/virtqemud-sock`, SYSTEM_SOCKET];
  for (const sock of sockets) {
    if (await probe(sock)) {
      return {
        uri: parseLibvirtUri('qemu:///system'),
        source: 'system-socket',
        reason: `a system libvirt daemon answers at ${sock}`,
      };
    }
  }
  return {
    uri: parseLibvirtUri('qemu:///session'),
    source: 'session-default',
    reason: `no system libvirt daemon answers at ${sockets.join(' or ')}; using the per-user session daemon`,
  };
}

/** The defaults for SocketEnv from this process. */
export function processSocketEnv(): SocketEnv {
  return {
    uid: typeof process.geteuid === 'function' ? process.geteuid() : 1000,
    env: process.env,
    home: process.env.HOME ?? homedir(),
  };
}

/** The local user name, the default SSH login (as OpenSSH's ssh uses). */
export function localUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}
