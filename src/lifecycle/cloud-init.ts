/**
 * The machine's own cloud-init (cloud_init in vmenv.yaml), ready for renderSeed: files read
 * and checked (inline documents were checked with vmenv.yaml), and a warning when the
 * network-config leaves the management NIC without DHCP.
 */
import { readFile } from 'node:fs/promises';
import {
  type CloudInitDoc,
  managementNicHasDhcp,
  networkConfigProblems,
  type ParsedDoc,
  parseCloudYaml,
  parseUserData,
  userDataProblems,
} from '../config/cloud-init.js';
import { displayPath } from '../config/errors.js';
import { resolveHostPath } from '../config/normalize.js';
import type { CloudInitSource, MachineConfig } from '../config/types.js';
import { ExitCode, UserError } from '../errors.js';

export interface MachineCloudInit {
  userData?: CloudInitDoc;
  networkConfig?: CloudInitDoc;
  /** Worth telling the user, not worth stopping for. */
  warnings: string[];
}

async function readDoc(
  source: CloudInitSource,
  key: string,
  projectDir: string,
  parse: (text: string) => ParsedDoc,
  problems: (doc: CloudInitDoc) => string[],
): Promise<CloudInitDoc> {
  if ('inline' in source) return source.inline;
  const path = resolveHostPath(projectDir, source.file);
  const fail = (message: string, line?: number): never => {
    throw new UserError(`cloud_init.${key}: ${displayPath(path)}${line === undefined ? '' : `:${line}`} ${message}`, {
      exitCode: ExitCode.usage,
      hint: `cloud_init.${key} names a file relative to the project folder (${projectDir}).`,
    });
  };
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return fail(code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a folder, not a file' : `cannot be read: ${(err as Error).message}`);
  }
  const parsed = parse(text);
  if ('problem' in parsed) return fail(parsed.problem, parsed.line);
  const wrong = problems(parsed.doc);
  if (wrong.length > 0) return fail(`has ${wrong.length === 1 ? 'a problem' : 'problems'}: ${wrong.join('; ')}`);
  return parsed.doc;
}

/** Reads and checks the machine's cloud_init; `mac` is the management NIC's (for the DHCP warning). */
export async function machineCloudInit(machine: MachineConfig, projectDir: string, mac: string): Promise<MachineCloudInit> {
  const { user_data: user, network_config: net } = machine.cloud_init;
  const out: MachineCloudInit = { warnings: [] };
  if (user !== undefined) out.userData = await readDoc(user, 'user_data', projectDir, parseUserData, userDataProblems);
  if (net !== undefined) {
    out.networkConfig = await readDoc(net, 'network_config', projectDir, parseCloudYaml, networkConfigProblems);
    if (!managementNicHasDhcp(out.networkConfig, mac)) {
      out.warnings.push(
        `cloud_init.network_config gives the management NIC (the first one, MAC ${mac}) no DHCPv4: vmenv finds the machine and QEMU's user-mode network reaches it through DHCP, so 'up' may wait until boot.timeout (give it dhcp4: true, matched by name such as eth0 or en*)`,
      );
    }
  }
  return out;
}
