/**
 * "A documented option that no code reads is a defect": every key of vmenv.yaml (the
 * tables of src/config/fields.ts, which README.md's table is checked against) must be
 * read somewhere in src/ outside src/config/. A reader is found by TypeScript's type
 * checker, not by name: a property access (`folder.owner`, `m['owner']`) or a
 * destructuring (`{ owner }`) whose symbol is that key's property in src/config/types.ts
 * (the typed MachineConfig that loadConfig hands out). Writing a property is not reading
 * it. Keys with no reader yet are listed below with why; the list must stay true.
 */
import { readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { machineFields, type Field } from '../../../src/config/fields.js';

const root = join(import.meta.dirname, '..', '..', '..');
const src = join(root, 'src');

/**
 * Keys without a reader outside src/config/ (yet), each with the reason. A key here that
 * gains a reader makes the test fail too: take it off the list.
 */
const NOT_READ_YET: Record<string, string> = {};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

interface KeyTarget {
  path: string;
  /** The property declarations in types.ts that reading the key reads. */
  declarations: ts.Declaration[];
}

/** Every key path of the tables, each with the property of the typed config it becomes. */
function keyTargets(checker: ts.TypeChecker, machineConfig: ts.Type): KeyTarget[] {
  const out: KeyTarget[] = [];
  const visit = (fields: Record<string, Field>, type: ts.Type, prefix: string): void => {
    for (const [key, field] of Object.entries(fields)) {
      const path = `${prefix}${key}`;
      const prop = type.getProperty(key);
      if (prop === undefined) throw new Error(`${path}: no property '${key}' in ${checker.typeToString(type)}`);
      out.push({ path, declarations: prop.declarations ?? [] });
      const propType = checker.getNonNullableType(checker.getTypeOfSymbol(prop));
      descend(field, propType, path);
    }
  };
  const descend = (field: Field, type: ts.Type, path: string): void => {
    if (field.kind === 'object') visit(field.fields, type, `${path}.`);
    else if (field.kind === 'union') {
      // The box: a name, or a map with name and version; both become a BoxRef.
      for (const option of field.options) if (option.kind === 'object') visit(option.fields, type, `${path}.`);
    } else if (field.kind === 'list') {
      const item = checker.getTypeArguments(type as ts.TypeReference)[0]!;
      if (field.item.kind === 'object') visit(field.item.fields, item, `${path}[].`);
      if (field.item.kind === 'tagged') {
        const tagged = field.item;
        const members = item.isUnion() ? item.types : [item];
        for (const [variant, v] of Object.entries(tagged.variants)) {
          const member = members.find((m) => {
            const tag = m.getProperty(tagged.tag);
            return tag !== undefined && checker.typeToString(checker.getTypeOfSymbol(tag)) === JSON.stringify(variant);
          });
          if (member === undefined) throw new Error(`${path}: no member of ${checker.typeToString(item)} with ${tagged.tag} '${variant}'`);
          // The common keys and the tag once (from the first variant), then the variant's own.
          if (variant === Object.keys(tagged.variants)[0]) visit({ [tagged.tag]: { kind: 'string', description: '' }, ...tagged.common }, member, `${path}[].`);
          visit(v.fields, member, `${path}[].`);
        }
      }
    }
  };
  visit(machineFields as Record<string, Field>, machineConfig, '');
  return out;
}

/** The declarations of every property read in `files`: accesses and destructurings, not assignments. */
function readDeclarations(checker: ts.TypeChecker, files: readonly ts.SourceFile[]): Set<ts.Declaration> {
  const read = new Set<ts.Declaration>();
  const mark = (symbol: ts.Symbol | undefined): void => {
    if (symbol === undefined) return;
    // A property of a union (`p.name` on a Provisioner) stands for each member's.
    for (const s of checker.getRootSymbols(symbol)) for (const d of s.declarations ?? []) read.add(d);
  };
  const isWritten = (node: ts.Node): boolean =>
    ts.isBinaryExpression(node.parent) && node.parent.left === node && node.parent.operatorToken.kind === ts.SyntaxKind.EqualsToken;
  const walk = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && !isWritten(node)) mark(checker.getSymbolAtLocation(node.name));
    else if (ts.isElementAccessExpression(node) && ts.isStringLiteral(node.argumentExpression) && !isWritten(node)) {
      mark(checker.getSymbolAtLocation(node.argumentExpression));
    } else if (ts.isBindingElement(node) && ts.isObjectBindingPattern(node.parent) && node.dotDotDotToken === undefined) {
      const name = node.propertyName ?? node.name;
      if (ts.isIdentifier(name) || ts.isStringLiteral(name)) mark(checker.getTypeAtLocation(node.parent).getProperty(name.text));
    }
    ts.forEachChild(node, walk);
  };
  for (const f of files) walk(f);
  return read;
}

describe('every key of vmenv.yaml', () => {
  it('has a reader in src/ outside src/config/', { timeout: 180_000 }, () => {
    const files = sourceFiles(src);
    const parsed = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
    const program = ts.createProgram(files, { ...parsed!.options, noEmit: true });
    const checker = program.getTypeChecker();

    const types = program.getSourceFile(join(src, 'config', 'types.ts'))!;
    const decl = types.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'MachineConfig')!;
    const targets = keyTargets(checker, checker.getTypeAtLocation(decl.name));

    const configDir = join(src, 'config') + sep;
    const readers = program.getSourceFiles().filter((f) => f.fileName.startsWith(src + sep) && !f.fileName.startsWith(configDir));
    expect(readers.length).toBeGreaterThan(50);
    const read = readDeclarations(checker, readers);

    const unread = targets.filter((t) => !t.declarations.some((d) => read.has(d))).map((t) => t.path);
    expect(targets.map((t) => t.path)).toContain('synced_folders[].owner');
    expect(targets.map((t) => t.path)).toContain('provision[].playbook');
    expect([...unread].sort(), `keys no code outside ${relative(root, configDir)} reads`).toEqual(Object.keys(NOT_READ_YET).sort());
  });
});
