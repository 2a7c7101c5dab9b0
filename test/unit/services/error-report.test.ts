import { Errors, Parser } from '@oclif/core';
import { describe, expect, it } from 'vitest';
import {
  LibvirtConnectError,
  LibvirtConnectionClosedError,
  LibvirtError,
  LibvirtProtocolError,
  LibvirtUriError,
} from '../../../src/libvirt/errors.js';
import {
  codeName,
  describeError,
  formatErrorJson,
  formatErrorText,
  usageLine,
} from '../../../src/services/error-report.js';
import {
  ExitCode,
  InterruptedError,
  TimeoutError,
  UserError,
} from '../../../src/errors.js';

async function parseError(argv: string[], input: Parameters<typeof Parser.parse>[1]): Promise<unknown> {
  try {
    await Parser.parse(argv, input);
  } catch (err) {
    return err;
  }
  throw new Error('expected the parse to fail');
}

describe('describeError: user errors', () => {
  it('keeps message, hint and exit code of a UserError', () => {
    const r = describeError(new UserError('vmenv.yaml not found', { hint: 'Run vmenv init.', exitCode: ExitCode.usage }));
    expect(r).toEqual({ code: 'usage', exitCode: 2, message: 'vmenv.yaml not found', hint: 'Run vmenv init.' });
  });

  it('defaults a UserError to exit 1 without a hint', () => {
    const r = describeError(new UserError('nope'));
    expect(r.exitCode).toBe(1);
    expect(r.code).toBe('user');
    expect(r.hint).toBeUndefined();
    expect(r.stack).toBeUndefined();
  });

  it('maps TimeoutError to exit 5 and InterruptedError to 130', () => {
    expect(describeError(new TimeoutError('an IP address', 1500)).exitCode).toBe(5);
    expect(describeError(new InterruptedError()).exitCode).toBe(130);
    expect(describeError(new InterruptedError()).code).toBe('interrupted');
  });
});

describe('describeError: oclif', () => {
  it('maps an unknown flag to a usage error, exit 2, with the usage line', async () => {
    const err = await parseError(['--bogus'], { flags: {}, args: {}, strict: true });
    const r = describeError(err, { command: 'up', usage: 'vmenv up [MACHINE...] [FLAGS]' });
    expect(r.exitCode).toBe(2);
    expect(r.code).toBe('usage');
    expect(r.message).toBe('Nonexistent flag: --bogus');
    expect(r.usage).toBe('vmenv up [MACHINE...] [FLAGS]');
    expect(r.hint).toContain("'vmenv up --help'");
  });

  it('maps a missing required argument to exit 2', async () => {
    const { Args } = await import('@oclif/core');
    const err = await parseError([], { flags: {}, args: { source: Args.string({ required: true }) }, strict: true });
    const r = describeError(err, { command: 'box add' });
    expect(r.exitCode).toBe(2);
    expect(r.message).toMatch(/Missing 1 required arg/);
    expect(r.message).not.toMatch(/See more help/);
  });

  it('exits silently with the code of an oclif ExitError', () => {
    const r = describeError(new Errors.ExitError(3));
    expect(r).toMatchObject({ exitCode: 3, silent: true });
    expect(formatErrorText(r)).toBe('');
  });

  it("reports this.error()'s CLIError as a message with its exit code", () => {
    const r = describeError(new Errors.CLIError('bad thing', { exit: 1 }));
    expect(r).toEqual({ code: 'user', exitCode: 1, message: 'bad thing' });
  });
});

describe('describeError: libvirt', () => {
  it('maps LibvirtConnectError to exit 3 with a hint', () => {
    const r = describeError(new LibvirtConnectError('cannot connect: ENOENT', 'unix socket /run/libvirt/libvirt-sock'));
    expect(r.exitCode).toBe(ExitCode.unavailable);
    expect(r.code).toBe('unavailable');
    expect(r.message).toBe('cannot connect: ENOENT');
    expect(r.hint).toContain('unix socket /run/libvirt/libvirt-sock');
    expect(r.hint).toContain('vmenv doctor');
  });

  it('maps a closed connection to exit 3', () => {
    expect(describeError(new LibvirtConnectionClosedError()).exitCode).toBe(3);
  });

  it('maps a bad URI to a usage error', () => {
    const r = describeError(new LibvirtUriError('unknown scheme', 'xen://'));
    expect(r.exitCode).toBe(2);
    expect(r.message).toContain("'xen://'");
  });

  it("shows libvirt's code and domain name for a LibvirtError", () => {
    const err = new LibvirtError({
      code: 42,
      domain: 10,
      level: 2,
      message: "Domain not found: no domain with matching name 'x'",
      procedure: 'DomainLookupByName',
    });
    const r = describeError(err);
    expect(r.exitCode).toBe(1);
    expect(r.message).toBe(
      "libvirt: Domain not found: no domain with matching name 'x' (qemu error 42, in DomainLookupByName)",
    );
    expect(r.libvirt).toEqual({ code: 42, domain: 'qemu', procedure: 'DomainLookupByName' });
    expect(r.hint).toContain('vmenv status');
  });

  it('gives a permissions hint for access denied', () => {
    const err = new LibvirtError({ code: 88, domain: 55, level: 2, message: 'access denied' });
    const r = describeError(err);
    expect(r.message).toContain('access error 88');
    expect(r.hint).toContain('libvirt');
  });

  it('treats a protocol error as a bug', () => {
    expect(describeError(new LibvirtProtocolError('bad packet length')).exitCode).toBe(70);
  });
});

describe('describeError: aborts and bugs', () => {
  it('maps an AbortError caused by an InterruptedError to 130', () => {
    const abort = new Error('The operation was aborted', { cause: new InterruptedError() });
    abort.name = 'AbortError';
    expect(describeError(abort).exitCode).toBe(130);
  });

  it('maps a DOMException TimeoutError to exit 5', () => {
    const err = new DOMException('The operation timed out.', 'TimeoutError');
    expect(describeError(err).exitCode).toBe(5);
  });

  it('reports any other Error as a bug with its stack and causes', () => {
    const r = describeError(new TypeError('x is undefined', { cause: new Error('root') }));
    expect(r.exitCode).toBe(70);
    expect(r.code).toBe('bug');
    expect(r.message).toBe('vmenv hit a bug: x is undefined');
    expect(r.stack).toContain('TypeError: x is undefined');
    expect(r.stack).toContain('Caused by: Error: root');
    const text = formatErrorText(r);
    expect(text.split('\n')[0]).toBe('vmenv hit a bug: x is undefined');
    expect(text).toMatch(/please report it/i);
  });

  it('reports a thrown non-Error as a bug', () => {
    const r = describeError('just a string');
    expect(r.exitCode).toBe(70);
    expect(r.message).toBe('vmenv hit a bug: just a string');
  });
});

describe('formatting', () => {
  it('prints Error: and Hint: lines', () => {
    const text = formatErrorText(describeError(new UserError('it broke', { hint: 'fix it' })));
    expect(text).toBe('Error: it broke\nHint: fix it');
  });

  it('colours only when asked', () => {
    const r = describeError(new UserError('it broke'));
    expect(formatErrorText(r)).not.toContain('\u001B[');
    expect(formatErrorText(r, { color: true })).toContain('\u001B[');
  });

  it('prints JSON with message, hint, code', () => {
    const json = formatErrorJson(describeError(new UserError("machine 'web' is not created", { hint: "Run 'vmenv up web' first." })));
    expect(json.error).toMatchObject({ code: 'user', exitCode: 1, message: "machine 'web' is not created", hint: "Run 'vmenv up web' first." });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
    expect(formatErrorJson(describeError(new UserError('x'))).error['hint']).toBeNull();
  });

  it('names every exit code', () => {
    for (const [name, value] of Object.entries(ExitCode)) expect(codeName(value)).toBe(name);
    expect(codeName(99)).toBe('user');
  });

  it('builds usage lines from args', () => {
    expect(usageLine('up', { args: { machine: {} }, strict: false, hasFlags: true })).toBe('vmenv up [MACHINE...] [FLAGS]');
    expect(usageLine('box add', { args: { source: { required: true } }, hasFlags: true })).toBe(
      'vmenv box add SOURCE [FLAGS]',
    );
    expect(usageLine('box list', {})).toBe('vmenv box list');
  });
});
