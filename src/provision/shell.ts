import { isAbsolute, resolve } from 'node:path';
import type { ShellProvisioner } from '../config/types.js';
import { shQuote } from '../ssh/known-hosts.js';
import { ExitCode, UserError } from '../errors.js';
import { prefixer } from '../util/prefixer.js';
import type { ProvisionerRun } from './registry.js';

/** `type: shell`: an inline script or a file of the project, copied into the guest and run there (with sudo when privileged). */
export async function runShell(p: ShellProvisioner, { h, session, label, out, signal }: ProvisionerRun): Promise<void> {
  let script = p.inline;
  if (p.path !== undefined) {
    const local = isAbsolute(p.path) ? p.path : resolve(h.project.dir, p.path);
    script = await import('node:fs/promises').then((fs) => fs.readFile(local, 'utf8'));
  }
  const remote = `/tmp/vmenv-provision-${process.pid}-${Date.now().toString(36)}.sh`;
  const env = Object.entries(p.env).map(([k, v]) => `export ${k}=${shQuote(v)}`).join('\n');
  const upload = await session.exec(`cat > ${remote} && chmod 0755 ${remote}`, { stdin: `${script ?? ''}\n` });
  if (upload.code !== 0) throw new UserError(`could not copy provisioner '${label}' into machine '${h.machine.name}'`);
  const command = `${env ? `${env}\n` : ''}${p.privileged ? 'sudo -n -E ' : ''}${remote} ${p.args.map(shQuote).join(' ')}; s=$?; rm -f ${remote}; exit $s`;
  const stdout = prefixer(`${h.machine.name}: `, out);
  const stderr = prefixer(`${h.machine.name}: `, out);
  const r = await session.exec(command, { onStdout: (c) => stdout.write(c), onStderr: (c) => stderr.write(c), ...(signal ? { signal } : {}) });
  stdout.end();
  stderr.end();
  if (r.code !== 0) {
    throw new UserError(`provisioner '${label}' failed in machine '${h.machine.name}' with exit code ${String(r.code ?? r.signal)}`, {
      hint: 'Its output is above. Fix it, then run `vmenv provision`.',
      exitCode: ExitCode.user,
    });
  }
}
