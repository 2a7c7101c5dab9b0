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
 */
import { shQuote } from '../libvirt/transport/ssh.js';

export interface SshConfigJump {
  host: string;
  port?: number;
  user?: string;
  /** A key for the jump host; when given (or knownHostsFile), a Host block of its own is written. */
  identityFile?: string;
  knownHostsFile?: string;
  /** The name of that block. Default `<machine name>-jump`. */
  alias?: string;
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
  /** Reach the guest through this SSH host (ProxyJump). */
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
 * `ssh -F '<file>'` — quoted the way rsync splits its -e command (quotes group words;
 * a doubled quote inside stands for itself).
 */
export function rsyncRemoteShell(configFile: string, ssh = 'ssh'): string {
  const q = (s: string): string => (SAFE_WORD.test(s) ? s : `'${s.replace(/'/g, "''")}'`);
  return `${q(ssh)} -F ${q(configFile)}`;
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

function jumpSpec(j: SshConfigJump): string {
  const h = j.host.includes(':') ? `[${j.host}]` : j.host;
  return `${j.user ? `${j.user}@` : ''}${h}${j.port !== undefined && j.port !== 22 ? `:${j.port}` : ''}`;
}

/** One machine's Host block (and its jump host's, when that needs its own key). */
export function renderSshConfigHost(h: SshConfigHost): string {
  checkAlias(h.name, 'the machine name');
  if (h.proxyCommand !== undefined && h.jump !== undefined) {
    throw new TypeError(`machine ${h.name}: ProxyCommand and ProxyJump exclude each other; give one`);
  }
  const out: string[] = [];
  let proxyJump: string | undefined;
  if (h.jump !== undefined) {
    const j = h.jump;
    if (j.identityFile !== undefined || j.knownHostsFile !== undefined) {
      const alias = j.alias ?? `${h.name}-jump`;
      checkAlias(alias, 'the jump host alias');
      out.push(`Host ${alias}`);
      out.push(line('HostName', quoteSshConfigArg(escapeSshTokens(j.host))));
      if (j.port !== undefined) out.push(line('Port', String(j.port)));
      if (j.user !== undefined) out.push(line('User', quoteSshConfigArg(j.user)));
      if (j.identityFile !== undefined) {
        out.push(line('IdentityFile', quoteSshConfigArg(escapeSshTokens(j.identityFile))));
        out.push(line('IdentitiesOnly', 'yes'));
      }
      if (j.knownHostsFile !== undefined) out.push(line('UserKnownHostsFile', quoteSshConfigArg(escapeSshTokens(j.knownHostsFile))));
      out.push(line('BatchMode', 'yes'));
      out.push(line('LogLevel', 'ERROR'));
      out.push('');
      proxyJump = alias;
    } else {
      proxyJump = jumpSpec(j);
    }
  }
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
  if (proxyJump !== undefined) out.push(line('ProxyJump', proxyJump));
  if (h.proxyCommand !== undefined) {
    // ssh takes the rest of the line as it is and runs it with `sh -c`.
    if (/[\r\n\0]/.test(h.proxyCommand)) throw new TypeError(`machine ${h.name}: a ProxyCommand cannot hold a line break`);
    out.push(line('ProxyCommand', h.proxyCommand));
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
