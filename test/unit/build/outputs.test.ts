import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOutputs, checksumLine, mergeFormats, outputFiles, planOutputs, tempBeside, writeChecksumFile } from '../../../src/build/outputs.js';
import { ExitCode, UserError } from '../../../src/errors.js';

describe('planOutputs', () => {
  it('writes ./<recipe>.box by default, other formats beside it', () => {
    expect(planOutputs(['box', 'qcow2', 'raw', 'tar'], 'debian-12', undefined, '/work')).toEqual({
      box: '/work/debian-12.box',
      qcow2: '/work/debian-12.qcow2',
      raw: '/work/debian-12.raw',
      tar: '/work/debian-12.tar',
    });
  });

  it('takes -o as the .box path (relative to cwd), with or without the .box extension', () => {
    expect(planOutputs(['box', 'qcow2'], 'tiny', 'out/t.box', '/w')).toEqual({ box: '/w/out/t.box', qcow2: '/w/out/t.qcow2' });
    expect(planOutputs(['box', 'tar'], 'tiny', '/abs/t', '/w')).toEqual({ box: '/abs/t', tar: '/abs/t.tar' });
    expect(planOutputs(['qcow2'], 'tiny', undefined, '/w')).toEqual({ qcow2: '/w/tiny.qcow2' });
  });
});

describe('mergeFormats', () => {
  it("adds --format's list to the recipe's formats, in a fixed order, once each", () => {
    expect(mergeFormats(['box'], 'tar, qcow2,box')).toEqual(['box', 'qcow2', 'tar']);
    expect(mergeFormats(['box'])).toEqual(['box']);
    expect(mergeFormats(['qcow2'], '')).toEqual(['qcow2']);
  });

  it('refuses unknown names as a usage error', () => {
    const err = (() => {
      try {
        mergeFormats(['box'], 'qcow2,vmdk,iso');
      } catch (e) {
        return e as UserError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(UserError);
    expect(err!.message).toBe('Unknown output formats: vmdk, iso.');
    expect(err!.exitCode).toBe(ExitCode.usage);
  });
});

describe('files and checksums', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmenv-outputs-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists outputs and their checksum files', () => {
    expect(outputFiles({ box: '/a.box', raw: '/a.raw' }, 'sha256')).toEqual(['/a.box', '/a.box.sha256', '/a.raw', '/a.raw.sha256']);
    expect(outputFiles({ box: '/a.box' })).toEqual(['/a.box']);
  });

  it('refuses to overwrite without --force, and a folder always', async () => {
    await writeFile(join(dir, 'x.box'), 'old');
    await mkdir(join(dir, 'folder.box'));
    await expect(checkOutputs([join(dir, 'x.box'), join(dir, 'new.box')], false)).rejects.toThrow(`${join(dir, 'x.box')} already exists.`);
    await expect(checkOutputs([join(dir, 'x.box')], true)).resolves.toBeUndefined();
    await expect(checkOutputs([join(dir, 'folder.box')], true)).rejects.toThrow(/is a folder/);
  });

  it('writes <file>.sha256 as sha256sum does', async () => {
    const f = join(dir, 'hello.box');
    await writeFile(f, 'hello\n');
    const written = await writeChecksumFile(f, 'sha256');
    expect(written).toBe(`${f}.sha256`);
    expect(await readFile(written, 'utf8')).toBe('5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  hello.box\n');
    expect(checksumLine('ab', '/x/y/z.raw')).toBe('ab  z.raw\n');
  });

  it('makes temporary names in the same folder, hidden', () => {
    const t = tempBeside('/out/debian-12.box');
    expect(t).toMatch(/^\/out\/\.debian-12\.box\.\d+\.[0-9a-f]{8}\.tmp$/);
  });
});
