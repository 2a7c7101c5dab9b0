/**
 * OpenSSH client configuration for machines (`vmenv ssh-config`): a `Host` block per
 * machine that `ssh -F <file> <name>`, `scp -F`, `rsync -e 'ssh -F <file>'` and
 * editors' remote modes accept as it is — the machine's key only, the pinned host key
 * as the only known key (StrictHostKeyChecking yes), and the way to reach the guest
 * (a ProxyJump through a remote libvirt host, or a ProxyCommand such as
 * `ip netns exec <ns> nc %h %p` for guests inside a network namespace).
 *
 * Values are written the way ssh's config parser reads them back: words with spaces,
 * quotes, `#` or backslashes in double quotes (`\"` and `\\` escaped), and `%` doubled
 * where ssh expands %-tokens (HostName, IdentityFile, UserKnownHostsFile).
 *
 * A jump host is written as a ProxyCommand running `ssh -W '[%h]:%p' <jump>` with its
 * arguments quoted here, not as ProxyJump: OpenSSH builds a ProxyJump's command with
 * `-F <this config's path>` unquoted and %-expanded, which breaks on paths with spaces
 * or `%` (a project directory can have either).
 */
import { shQuote } from './known-hosts.js';

export interface SshConfigJump {
  host: string;
  port?: number;
  user?: string;
  /** A key for the jump host (else ssh's own choice: ~/.ssh/config, the agent, ~/.ssh/id_*). */
  identityFile?: string;
  /** Where the jump host's key is known (else ~/.ssh/known_hosts); checked strictly when given. */
  knownHostsFile?: string;
}

export interface SshConfigHost {
  /** The `Host` name: what `ssh -F file <name>` is given. */
  name: string;
  hostName: string;
  port?: number;
  user: string;
  identityFile: string;
  /** The file holding the pinned host key line (see writePinnedKnownHosts). */
  knownHostsFile: string;
  /** The name the pinned line is filed under, when not `[hostName]:port`. */
  hostKeyAlias?: string;
  /** A command whose stdin/stdout reach the guest (`%h`, `%p`, `%r` expanded by ssh). */
  proxyCommand?: string;
  /** Reach the guest through this SSH host (like ProxyJump; see jumpProxyCommand). */
  jump?: SshConfigJump;
  forwardAgent?: boolean;
  /** More `Keyword value` pairs, written as given (values quoted). */
  extra?: Array<[string, string]>;
  /** A `#` comment line above the block. */
  comment?: string;
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./~-]+$/;

/** One argument as ssh's config parser reads it (`"…"` with `\"` and `\\` when needed). */
export function quoteSshConfigArg(value: string): string {
  if (/[\r\n\0]/.test(value)) throw new TypeError(`an ssh_config value cannot hold a line break or NUL: ${JSON.stringify(value)}`);
  if (value !== '' && SAFE_WORD.test(value)) return value;
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A literal for a keyword that expands %-tokens: `%` doubled. */
export function escapeSshTokens(value: string): string {
  return value.replace(/%/g, '%%');
}

/** A ProxyCommand that reaches %h:%p from inside network namespace `netns` (needs root, as `ip netns exec`). */
export function netnsProxyCommand(netns: string, nc = 'nc'): string {
  return `ip netns exec ${shQuote(netns)} ${shQuote(nc)} %h %p`;
}

/**
 * The `-e` value for rsync (and the like) that makes it use this config:
 * `ssh -F '<file>' [sshArgs…]` — quoted the way rsync splits its -e command (quotes
 * group words; a doubled quote inside stands for itself).
 */
export function rsyncRemoteShell(configFile: string, ssh = 'ssh', sshArgs: readonly string[] = []): string {
  return [ssh, '-F', configFile, ...sshArgs].map((w) => (SAFE_WORD.test(w) ? w : `'${w.replace(/'/g, "''")}'`)).join(' ');
}

const HOST_NAME = /^[A-Za-z0-9._@:+-]+$/;

function checkAlias(name: string, what: string): void {
  if (!HOST_NAME.test(name)) {
    throw new TypeError(`${what} ${JSON.stringify(name)} cannot be an ssh_config Host name (letters, digits and . _ @ : + - only)`);
  }
}

function line(key: string, value: string): string {
  return `  ${key} ${value}`;
}

/**
 * The ProxyCommand that reaches `%h:%p` through a jump host: `ssh … -W '[%h]:%p' host`.
 * Each argument is shell-quoted; `%` in paths is doubled twice (the outer ssh expands
 * this command, the inner one expands -i and UserKnownHostsFile again).
 */
export function jumpProxyCommand(j: SshConfigJump, ssh = 'ssh'): string {
  const once = (v: string): string => shQuote(escapeSshTokens(v));
  const twice = (v: string): string => shQuote(escapeSshTokens(escapeSshTokens(v)));
  const args = [once(ssh)];
  if (j.user !== undefined) args.push('-l', once(j.user));
  if (j.port !== undefined) args.push('-p', String(j.port));
  if (j.identityFile !== undefined) args.push('-i', twice(j.identityFile), '-o', 'IdentitiesOnly=yes');
  if (j.knownHostsFile !== undefined) {
    args.push('-o', twice(`UserKnownHostsFile=${j.knownHostsFile}`), '-o', 'StrictHostKeyChecking=yes');
  }
  if (j.identityFile !== undefined || j.knownHostsFile !== undefined) args.push('-o', 'BatchMode=yes');
  args.push('-o', 'LogLevel=ERROR', '-W', `'[%h]:%p'`, once(j.host));
  return args.join(' ');
}

/** One machine's Host block. */
export function renderSshConfigHost(h: SshConfigHost): string {
  checkAlias(h.name, 'the machine name');
  if (h.proxyCommand !== undefined && h.jump !== undefined) {
    throw new TypeError(`machine ${h.name}: a proxy command and a jump host exclude each other; give one`);
  }
  const out: string[] = [];
  if (h.comment !== undefined) {
    for (const c of h.comment.split(/\r?\n/)) out.push(`# ${c}`);
  }
  out.push(`Host ${h.name}`);
  out.push(line('HostName', quoteSshConfigArg(escapeSshTokens(h.hostName))));
  out.push(line('Port', String(h.port ?? 22)));
  out.push(line('User', quoteSshConfigArg(h.user)));
  out.push(line('IdentityFile', quoteSshConfigArg(escapeSshTokens(h.identityFile))));
  out.push(line('IdentitiesOnly', 'yes'));
  out.push(line('PasswordAuthentication', 'no'));
  out.push(line('UserKnownHostsFile', quoteSshConfigArg(escapeSshTokens(h.knownHostsFile))));
  out.push(line('StrictHostKeyChecking', 'yes'));
  // The file holds the pin and nothing else: ssh must not add the guest's other keys.
  out.push(line('UpdateHostKeys', 'no'));
  if (h.hostKeyAlias !== undefined) out.push(line('HostKeyAlias', quoteSshConfigArg(h.hostKeyAlias)));
  out.push(line('LogLevel', 'ERROR'));
  if (h.forwardAgent !== undefined) out.push(line('ForwardAgent', h.forwardAgent ? 'yes' : 'no'));
  const proxyCommand = h.jump !== undefined ? jumpProxyCommand(h.jump) : h.proxyCommand;
  if (proxyCommand !== undefined) {
    // ssh takes the rest of the line as it is and runs it with `sh -c`.
    if (/[\r\n\0]/.test(proxyCommand)) throw new TypeError(`machine ${h.name}: a ProxyCommand cannot hold a line break`);
    out.push(line('ProxyCommand', proxyCommand));
  }
  for (const [k, v] of h.extra ?? []) {
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(k)) throw new TypeError(`not an ssh_config keyword: ${JSON.stringify(k)}`);
    out.push(line(k, quoteSshConfigArg(v)));
  }
  return `${out.join('\n')}\n`;
}

/** Host blocks for machines, separated by blank lines. */
export function renderSshConfig(hosts: SshConfigHost | SshConfigHost[]): string {
  const list = Array.isArray(hosts) ? hosts : [hosts];
  return list.map(renderSshConfigHost).join('\n');
}
