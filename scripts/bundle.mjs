#!/usr/bin/env node
// The last build step (npm run build): bundles what `tsc` wrote to dist/ for the CLI's
// start-up. Node 20 loads each ES module file on its own, and a command loaded some
// 300 of them (@oclif/core and yaml alone are 230 small CommonJS files): that was
// about half of `vmenv status`. Bundled, a command loads a handful of files.
//
// The CLI's entry points are rewritten in place — dist/cli.js (what bin/run.js starts),
// dist/cli/commands/**/*.js and dist/cli/hooks/*.js, the files oclif.manifest.json names — and
// the code they share goes to dist/_chunks/. Everything else in dist/ stays as tsc
// wrote it (the port forwarder's own program, dist/net/forward/main.js, among them), so a
// plain `tsc` build still runs: it only overwrites the entries with their unbundled
// versions again.
//
// Kept external: ssh2 (loaded only by commands that use SSH; its optional native
// crypto binding is found relative to its own files) and what @oclif/core loads only
// for TypeScript sources in development (typescript, ts-node).
//
//   node scripts/bundle.mjs [dist-dir]
import { build } from 'esbuild';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist'));
const chunks = join(dist, '_chunks');
const DIST_PLACEHOLDER = '__VMENV_DIST_FROM_HERE__';

const jsFiles = (dir) =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? jsFiles(p) : p.endsWith('.js') ? [p] : [];
  });

if (!existsSync(join(dist, 'cli.js'))) {
  console.error(`bundle: ${join(dist, 'cli.js')} is missing: run tsc -p tsconfig.build.json first`);
  process.exit(1);
}

/**
 * Bundled, a module is no longer where tsc put it, so `import.meta.url` would name the
 * bundle. vmenv's modules use it to find files relative to themselves (templates/,
 * boxes/, the forwarder's main.js): give each its own URL back, computed from the
 * bundle's URL and where dist/ is from it (filled in per output file below).
 */
const ownModuleUrl = {
  name: 'own-module-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(dist + sep)) return undefined;
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const own = relative(dist, args.path).split(sep).join('/');
      const url = `new URL(${JSON.stringify(own)}, new URL(${JSON.stringify(DIST_PLACEHOLDER)}, import.meta.url)).href`;
      return { contents: text.replaceAll('import.meta.url', url), loader: 'js' };
    });
  },
};

rmSync(chunks, { recursive: true, force: true });
const entryPoints = [join(dist, 'cli.js'), ...jsFiles(join(dist, 'cli', 'commands')), ...jsFiles(join(dist, 'cli', 'hooks'))];
const result = await build({
  entryPoints,
  outdir: dist,
  outbase: dist,
  allowOverwrite: true,
  chunkNames: '_chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['ssh2', 'typescript', 'ts-node'],
  // Bundling renames clashing top-level names (class Status -> _Status): keep `.name` true.
  keepNames: true,
  // @oclif/core checks Node's version against its own package.json, read from beside its
  // files: bundled there is none (the check gives up), and loading semver for it cost
  // every command ~5 ms. npm checks vmenv's own engines field at install.
  define: { 'process.env.OCLIF_DISABLE_ENGINE_WARNING': '"1"' },
  // The CommonJS packages inside call require() for Node's own modules.
  banner: { js: "import { createRequire as __vmenvCreateRequire } from 'node:module'; const require = __vmenvCreateRequire(import.meta.url);" },
  plugins: [ownModuleUrl],
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
});

for (const out of result.outputFiles) {
  let text = out.text;
  if (text.includes(DIST_PLACEHOLDER)) {
    const toDist = relative(dirname(out.path), dist).split(sep).join('/');
    text = text.replaceAll(DIST_PLACEHOLDER, toDist === '' ? './' : `${toDist}/`);
  }
  await mkdir(dirname(out.path), { recursive: true });
  await writeFile(out.path, text);
}
console.error(`bundle: ${entryPoints.length} entry points, ${result.outputFiles.length - entryPoints.length} shared chunks in ${relative(process.cwd(), chunks) || chunks}`);
