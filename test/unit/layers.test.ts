/**
 * The layers of src/ (README "Layout"): a folder may import only from folders below it.
 * A new folder must be placed here before anything imports it or it imports anything.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/** Top first; folders on one line are siblings and do not import each other. */
const LAYERS: readonly (readonly string[])[] = [
  ['cli'],
  ['services'],
  ['inventory'],
  ['lifecycle'],
  ['provision'],
  ['sync'],
  ['access'],
  ['build'],
  ['net', 'box'],
  ['hosts'],
  ['project'],
  ['config'],
  ['libvirt'],
  ['ssh'],
  ['pipeline'],
  ['util', 'cli.ts'],
  ['errors.ts'],
];

const rank = new Map<string, number>(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The top-level entry of src/ a path is in: a folder name, or a root file as `name.ts`. */
function topOf(path: string): string {
  return relative(SRC, path).split('/')[0]!.replace(/\.js$/, '.ts');
}

/** Every relative import (static, dynamic, type-only, re-export) of a source file. */
function relativeImports(text: string): string[] {
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
}

describe('layers', () => {
  const files = tsFiles(SRC);

  it('knows every top-level entry of src/', () => {
    const unknown = [...new Set(files.map(topOf))].filter((t) => !rank.has(t));
    expect(unknown).toEqual([]);
  });

  it('imports point down', () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = topOf(file);
      for (const spec of relativeImports(readFileSync(file, 'utf8'))) {
        const to = topOf(normalize(join(dirname(file), spec)));
        if (to === from) continue;
        if ((rank.get(to) ?? -1) <= rank.get(from)!) upward.push(`${relative(SRC, file)} -> ${spec}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('finds the kinds of import it checks', () => {
    const text = "import a from './a.js';\nimport type { B } from '../b/c.js';\nconst d = await import('../d.js');\nexport * from './e.js';";
    expect(relativeImports(text)).toEqual(['./a.js', '../b/c.js', '../d.js', './e.js']);
  });
});
