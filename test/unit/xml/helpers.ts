/**
 * Helpers for the XML tests: libvirt's own schema validator and an XPath evaluator,
 * both from Debian packages (libvirt-clients, libxml2-utils). A missing tool fails the
 * test with a hint; it is never a reason to skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const expectedDir = join(dirname(fileURLToPath(import.meta.url)), 'expected');

export function readExpected(name: string): string {
  return readFileSync(join(expectedDir, name), 'utf8');
}

const PACKAGES: Record<string, string> = { 'virt-xml-validate': 'libvirt-clients', virsh: 'libvirt-clients', xmllint: 'libxml2-utils' };

function requireTool(tool: string): void {
  const probe = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(
      `${tool} is not installed (Debian package ${PACKAGES[tool] ?? '?'}): run \`bash test/host/setup.sh\` to install the test tools.`,
    );
  }
}

export type Schema = 'domain' | 'network' | 'storagevol' | 'storagepool';

/** Validate a document against libvirt's RNG schema; returns validator output, throws with it on failure. */
export function validateXml(xml: string, schema: Schema): string {
  requireTool('virt-xml-validate');
  const r = spawnSync('virt-xml-validate', ['-', schema], { input: xml, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`virt-xml-validate (${schema}) rejected the document:\n${r.stdout}${r.stderr}\n---\n${xml}`);
  }
  return `${r.stdout}${r.stderr}`;
}

/** Evaluate `string(expr)` with xmllint; the document must be well-formed. */
export function xpathString(xml: string, expr: string): string {
  requireTool('xmllint');
  const out = execFileSync('xmllint', ['--xpath', `string(${expr})`, '-'], { input: xml, encoding: 'utf8' });
  // xmllint ends its output with one newline of its own.
  return out.endsWith('\n') ? out.slice(0, -1) : out;
}

/** Check well-formedness with xmllint (throws on a parse error). */
export function assertWellFormed(xml: string): void {
  requireTool('xmllint');
  execFileSync('xmllint', ['--noout', '-'], { input: xml, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

const DEFINE: Record<Schema, string[]> = {
  domain: ['define'],
  network: ['net-define'],
  storagepool: ['pool-define'],
  storagevol: ['vol-create', 'default-pool'],
};

/**
 * Have libvirt's own XML parser read the document: define it on the in-process test
 * driver (`test:///default`, no daemon, nothing persists). This catches what the RNG
 * schema lets through but libvirt 9.0 rejects (e.g. `<backend type='passt'/>`).
 */
export function parseWithLibvirt(xml: string, schema: Schema): void {
  requireTool('virsh');
  const dir = mkdtempSync(join(tmpdir(), 'vmenv-xml-'));
  try {
    const file = join(dir, `${schema}.xml`);
    writeFileSync(file, xml);
    const r = spawnSync('virsh', ['-q', '-c', 'test:///default', ...(DEFINE[schema] ?? []), file], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`libvirt (test driver) rejected the ${schema} document:\n${r.stderr}\n---\n${xml}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
