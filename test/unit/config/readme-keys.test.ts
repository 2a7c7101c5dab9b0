import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { machineFields } from '../../../src/config/fields.js';

/** Every key of vmenv.yaml, as README.md's table names it (`network.subnet`, `disks[].size`). */
function keyPaths(fields: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, field] of Object.entries(fields)) {
    const f = field as { kind?: string; fields?: Record<string, unknown>; item?: { fields?: Record<string, unknown>; variants?: unknown } };
    const path = `${prefix}${key}`;
    out.push(path);
    if (f.kind === 'object' && f.fields) out.push(...keyPaths(f.fields, `${path}.`));
    if (f.kind === 'list' && f.item?.fields) out.push(...keyPaths(f.item.fields, `${path}[].`));
  }
  return out;
}

describe('README.md', () => {
  it('documents every key of vmenv.yaml', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8');
    const missing = keyPaths(machineFields).filter((k) => !readme.includes(`| \`${k}\``));
    expect(missing).toEqual([]);
  });
});
