/**
 * runOpenSsh and the shared connection's names, with a stand-in `ssh` program on PATH
 * (a shell script: real processes, real exit codes and signals).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runOpenSsh } from '../../../src/access/openssh-run.js';
import { sharedSshArgs, sharedSshSocket } from '../../../src/access/shared-ssh.js';
import { UserError } from '../../../src/errors.js';

let dir: string;
const savedPath = process.env.PATH;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv-openssh-run-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  process.env.PATH = savedPath;
});

/** An `ssh` that runs `body` (its arguments in "$@"). */
function fakeSsh(body: string): void {
  const bin = mkdtempSync(join(dir, 'bin-'));
  writeFileSync(join(bin, 'ssh'), `#!/bin/sh\n${body}\n`);
  chmodSync(join(bin, 'ssh'), 0o755);
  process.env.PATH = `${bin}:/usr/bin:/bin`;
}

const shutoff = new UserError("machine 'web' is shutoff");

describe('runOpenSsh', () => {
  it("returns ssh's exit code, and asks nothing when it connected", async () => {
    fakeSsh('exit 7');
    let asked = 0;
    const code = await runOpenSsh({ args: ['web', 'exit 7'], whyNot: async () => (asked++, shutoff), connected: () => true });
    expect(code).toBe(7);
    expect(asked).toBe(0);
  });

  it('passes the arguments unchanged', async () => {
    const out = join(dir, 'args.txt');
    fakeSsh(`printf '%s\\n' "$@" > ${out}`);
    expect(await runOpenSsh({ args: ['-F', '/x y/cfg', 'web', 'echo "a b"'], whyNot: async () => undefined, connected: () => true })).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('-F\n/x y/cfg\nweb\necho "a b"\n');
  });

  it('on 255 asks why: a machine that is not running gives that error, a running one keeps 255', async () => {
    fakeSsh('exit 255');
    await expect(runOpenSsh({ args: ['web'], whyNot: async () => shutoff, connected: () => false })).rejects.toBe(shutoff);
    expect(await runOpenSsh({ args: ['web'], whyNot: async () => undefined, connected: () => false })).toBe(255);
  });

  it('asks why when ssh has not connected after askAfterMs, and stops it when the machine does not run', async () => {
    fakeSsh('exec sleep 30');
    const t0 = Date.now();
    await expect(runOpenSsh({ args: ['web'], whyNot: async () => shutoff, connected: () => false, askAfterMs: 200 })).rejects.toBe(shutoff);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('lets a slow connection to a running machine go on', async () => {
    fakeSsh('sleep 0.6; exit 3');
    let asked = 0;
    expect(await runOpenSsh({ args: ['web'], whyNot: async () => (asked++, undefined), connected: () => false, askAfterMs: 100 })).toBe(3);
    expect(asked).toBe(1);
  });

  it('gives 128 + the signal when ssh is killed', async () => {
    fakeSsh('kill -INT $$; sleep 5');
    expect(await runOpenSsh({ args: ['web'], whyNot: async () => undefined, connected: () => true })).toBe(130);
  });

  it("says 'missing' when there is no ssh program", async () => {
    process.env.PATH = mkdtempSync(join(dir, 'empty-'));
    expect(await runOpenSsh({ args: ['web'], whyNot: async () => undefined, connected: () => true })).toBe('missing');
  });
});

describe('the shared connection', () => {
  it('has one short socket path per machine folder', () => {
    const a = sharedSshSocket('/home/someone/a/very/long/project/path/that/goes/on/.vmenv/machines/web', '/tmp/vmenv-1000');
    expect(a).toMatch(/^\/tmp\/vmenv-1000\/ssh-[0-9a-f]{16}\.sock$/);
    expect(Buffer.byteLength(a)).toBeLessThan(108);
    expect(sharedSshSocket('/p/.vmenv/machines/web', '/d')).toBe(sharedSshSocket('/p/.vmenv/machines/web', '/d'));
    expect(sharedSshSocket('/p/.vmenv/machines/web', '/d')).not.toBe(sharedSshSocket('/p/.vmenv/machines/db', '/d'));
  });

  it('makes ssh use the master or become it, idle for at most 10 minutes, ending with a dead guest', () => {
    const args = sharedSshArgs('/d/ssh-x.sock');
    const opts = Object.fromEntries(args.filter((_, i) => i % 2 === 1).map((o) => o.split('=')));
    expect(args.filter((_, i) => i % 2 === 0).every((a) => a === '-o')).toBe(true);
    expect(opts).toEqual({ ControlMaster: 'auto', ControlPath: '/d/ssh-x.sock', ControlPersist: '600', ServerAliveInterval: '5', ServerAliveCountMax: '3' });
  });
});
