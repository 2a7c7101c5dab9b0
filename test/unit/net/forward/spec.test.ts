import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkForwardSpec, describeHostEnd, ForwardSpecError, mappingsFromConfig, parseForwardSpecArg } from '../../../../src/net/forward/spec.js';

const tcp80 = { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8080, guestIp: '192.168.121.10', guestPort: 80 };

function problems(value: unknown): string[] {
  try {
    checkForwardSpec(value);
  } catch (err) {
    expect(err).toBeInstanceOf(ForwardSpecError);
    return (err as ForwardSpecError).problems;
  }
  throw new Error('expected the spec to be refused');
}

describe('forwarder spec', () => {
  it('accepts an object with mappings, a netns and an idle time', () => {
    const spec = { mappings: [tcp80, { ...tcp80, protocol: 'udp', hostPort: 5353, guestPort: 53 }], netns: 'vmenv-test', udpIdleMs: 5000 };
    expect(checkForwardSpec(spec)).toEqual(spec);
  });

  it('accepts a bare array of mappings', () => {
    expect(checkForwardSpec([tcp80])).toEqual({ mappings: [tcp80] });
  });

  it('writes addresses in canonical form', () => {
    const spec = checkForwardSpec([{ ...tcp80, hostIp: '0:0:0:0:0:0:0:1', guestIp: 'FE80:0:0::1' }]);
    expect(spec.mappings[0]).toMatchObject({ hostIp: '::1', guestIp: 'fe80::1' });
  });

  it('allows host port 0 (any free port) but not guest port 0', () => {
    expect(checkForwardSpec([{ ...tcp80, hostPort: 0 }]).mappings[0]?.hostPort).toBe(0);
    expect(problems([{ ...tcp80, guestPort: 0 }])).toEqual(['mappings[0].guestPort: expected a port number (1-65535)']);
  });

  it('names every problem at once, with where it is', () => {
    expect(
      problems({
        mappings: [{ protocol: 'sctp', hostIp: 'localhost', hostPort: 70000, guestIp: '10.0.0.1', guestPort: 1.5, extra: 1 }, 'x'],
        netns: '../etc',
        udpIdleMs: 5,
        other: true,
      }),
    ).toEqual([
      'unknown key "other"',
      'netns: "../etc" is not a network namespace name',
      'udpIdleMs: expected an integer of at least 100 (ms)',
      'mappings[0]: unknown key "extra"',
      'mappings[0].protocol: expected "tcp" or "udp"',
      'mappings[0].hostIp: "localhost" is not an IPv4 or IPv6 address',
      'mappings[0].hostPort: expected a port number (1-65535, or 0 for any free port)',
      'mappings[0].guestPort: expected a port number (1-65535)',
      'mappings[1]: expected an object',
    ]);
  });

  it('refuses the same host end twice, but the same port for tcp and udp is two ends', () => {
    expect(problems([tcp80, { ...tcp80, guestPort: 81 }])).toEqual(['mappings[1]: tcp 127.0.0.1:8080 is already forwarded by mappings[0]']);
    expect(checkForwardSpec([tcp80, { ...tcp80, protocol: 'udp' }]).mappings).toHaveLength(2);
    expect(checkForwardSpec([tcp80, { ...tcp80, hostIp: '127.0.0.2' }]).mappings).toHaveLength(2);
  });

  it('refuses an empty spec and things that are not specs', () => {
    expect(problems({ mappings: [] })).toEqual(['mappings: nothing to forward']);
    expect(problems({})).toEqual(['mappings: expected an array']);
    expect(problems('tcp:8080')).toEqual(['expected an object with "mappings" or an array of mappings']);
    expect(problems(null)).toEqual(['expected an object with "mappings" or an array of mappings']);
  });

  it('reads the command-line argument as JSON, or as the path of a JSON file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmenv-fwd-spec-'));
    const file = join(dir, 'spec.json');
    writeFileSync(file, JSON.stringify({ mappings: [tcp80] }));
    const read = (p: string): string => readFileSync(p, 'utf8');
    expect(parseForwardSpecArg(JSON.stringify([tcp80]), read)).toEqual({ mappings: [tcp80] });
    expect(parseForwardSpecArg(`  ${JSON.stringify({ mappings: [tcp80] })}`, read)).toEqual({ mappings: [tcp80] });
    expect(parseForwardSpecArg(file, read)).toEqual({ mappings: [tcp80] });
    expect(() => parseForwardSpecArg('{"mappings": [', read)).toThrow(/invalid forwarder spec: not JSON/);
    expect(() => parseForwardSpecArg(join(dir, 'missing.json'), read)).toThrow(/ENOENT/);
    rmSync(dir, { recursive: true });
  });

  it('maps forwarded_ports of the config to a guest address', () => {
    expect(
      mappingsFromConfig(
        [
          { guest: 80, host: 8080, host_ip: '127.0.0.1', protocol: 'tcp', auto_correct: false },
          { guest: 53, host: 5353, host_ip: '0.0.0.0', protocol: 'udp', auto_correct: true },
        ],
        '192.168.121.10',
      ),
    ).toEqual([
      { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8080, guestIp: '192.168.121.10', guestPort: 80 },
      { protocol: 'udp', hostIp: '0.0.0.0', hostPort: 5353, guestIp: '192.168.121.10', guestPort: 53 },
    ]);
  });

  it('names a host end with IPv6 addresses in brackets', () => {
    expect(describeHostEnd({ protocol: 'udp', hostIp: '::1', hostPort: 53 })).toBe('udp [::1]:53');
    expect(describeHostEnd({ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 80 })).toBe('tcp 127.0.0.1:80');
  });
});
