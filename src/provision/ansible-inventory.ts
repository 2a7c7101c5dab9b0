/**
 * What one `ansible-playbook` run is given, as pure functions: the inventory (a YAML
 * file), the SSH arguments that pin each guest's host key, and the command line.
 *
 * The inventory is YAML with every string written as a double-quoted scalar (no YAML
 * or INI quoting rule can bite: spaces, `#`, `=`, quotes, `%`) and tagged `!unsafe` so
 * that Ansible never templates it (a project path holding `{{` stays a path).
 */
import type { AnsibleProvisioner } from '../config/types.js';
import { shQuote } from '../ssh/known-hosts.js';
import { escapeSshTokens, quoteSshConfigArg } from '../ssh/config.js';
import type { MachineSshTarget } from '../access/machine-ssh-config.js';

/** A machine in the inventory: where and how it is reached over SSH. */
export type AnsibleHost = MachineSshTarget;

/** A YAML double-quoted scalar: JSON's escapes, with every non-ASCII code point escaped too. */
export function yamlString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (cp >= 0x20 && cp < 0x7f) out += ch;
    else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

function unsafe(value: string): string {
  return `!unsafe ${yamlString(value)}`;
}

/**
 * The arguments ssh gets for a host (`ansible_ssh_common_args`, which Ansible splits as
 * a POSIX shell would): the pinned key as the only known key, checked strictly, the
 * machine's key only, and the proxy command when there is one.
 */
export function sshCommonArgs(host: AnsibleHost, knownHostsFile: string): string {
  const options = [
    `UserKnownHostsFile=${quoteSshConfigArg(escapeSshTokens(knownHostsFile))}`,
    'GlobalKnownHostsFile=/dev/null',
    'StrictHostKeyChecking=yes',
    'UpdateHostKeys=no',
    'IdentitiesOnly=yes',
  ];
  if (host.proxyCommand !== undefined) {
    if (/[\r\n\0]/.test(host.proxyCommand)) throw new TypeError(`machine ${host.name}: a ProxyCommand cannot hold a line break`);
    options.push(`ProxyCommand=${host.proxyCommand}`);
  }
  return options.map((o) => `-o ${shQuote(o)}`).join(' ');
}

/** The inventory for a run: each host under `all`, with where each one's known_hosts file is. */
export function renderInventory(hosts: readonly AnsibleHost[], knownHostsFile: (host: AnsibleHost) => string): string {
  const lines = ['# Written by vmenv for one ansible-playbook run, and removed after it.', 'all:', '  hosts:'];
  for (const h of hosts) {
    lines.push(
      `    ${yamlString(h.name)}:`,
      '      ansible_connection: ssh',
      `      ansible_host: ${unsafe(h.address)}`,
      `      ansible_port: ${h.port}`,
      `      ansible_user: ${unsafe(h.user)}`,
      `      ansible_ssh_private_key_file: ${unsafe(h.privateKeyFile)}`,
      `      ansible_ssh_common_args: ${unsafe(sshCommonArgs(h, knownHostsFile(h)))}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Whether the provisioner runs once for all machines (Vagrant's `ansible.limit = "all"`). */
export function limitsToAll(p: AnsibleProvisioner): boolean {
  return p.limit === 'all';
}

/** ansible-playbook's arguments (without the program name). */
export function playbookArgs(p: AnsibleProvisioner, files: { inventory: string; extraVars?: string }): string[] {
  const args = ['--inventory', files.inventory];
  if (files.extraVars !== undefined) args.push('--extra-vars', `@${files.extraVars}`);
  if (p.limit !== undefined) args.push('--limit', p.limit);
  if (p.tags.length > 0) args.push('--tags', p.tags.join(','));
  if (p.become) args.push('--become');
  // After `--`: a playbook path can never be read as an option.
  args.push('--', p.playbook);
  return args;
}

/**
 * What ansible-playbook's stderr says went wrong, for the error message: its `ERROR! …`
 * lines, and where in which file when it names a place.
 */
export function ansibleErrorLines(stderr: string, max = 3): string[] {
  const lines = stderr.split('\n').map((l) => l.trim());
  const out = lines.filter((l) => l.startsWith('ERROR!')).slice(0, max);
  for (const l of lines) {
    const at = /^The error appears to be in '(.+)': line (\d+), column (\d+)/.exec(l);
    if (at) {
      out.push(`at ${at[1]} line ${at[2]}, column ${at[3]}`);
      break;
    }
  }
  return out;
}
