import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ForwardBindError, ForwarderStartError } from '../../../../src/net/forward/errors.js';
import { describePortHolder, nextFreePort, NoFreePortError, portHolder, type PortHolder } from '../../../../src/net/forward/ports.js';
import { ExitCode } from '../../../../src/errors.js';

const fixtures = join(import.meta.dirname, 'fixtures');
// The fixture tables were taken on a little-endian machine: read as such on any host.

/**
 * A /proc of files: the real socket tables of the fixtures, and processes whose fd
 * links name sockets (a link's target need not exist; `socket:[n]` is what the kernel shows).
 */
function fakeProc(processes: Array<{ pid: number; comm: string; sockets: number[] }>): string {
  const root = mkdtempSync(join(tmpdir(), 'vmenv-fake-proc-'));
  mkdirSync(join(root, 'net'));
  for (const n of ['tcp', 'tcp6', 'udp', 'udp6']) copyFileSync(join(fixtures, `proc-net-${n}`), join(root, 'net', n));
  for (const p of processes) {
    mkdirSync(join(root, String(p.pid), 'fd'), { recursive: true });
    writeFileSync(join(root, String(p.pid), 'comm'), `${p.comm}\n`);
    symlinkSync('/dev/null', join(root, String(p.pid), 'fd', '0'));
    symlinkSync('pipe:[99]', join(root, String(p.pid), 'fd', '1'));
    p.sockets.forEach((inode, i) => symlinkSync(`socket:[${inode}]`, join(root, String(p.pid), 'fd', String(3 + i))));
  }
  mkdirSync(join(root, 'self'));
  return root;
}

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

describe('who holds a port (fixture /proc)', () => {
  it('names the process with the listening socket open', async () => {
    const root = fakeProc([
      { pid: 1234, comm: 'nginx', sockets: [2181504] },
      { pid: 99, comm: 'bash', sockets: [] },
      { pid: 4321, comm: 'curl', sockets: [2181512] },
    ]);
    roots.push(root);
    const h = await portHolder(8080, 'tcp', '127.0.0.1', { procRoot: root, endianness: 'LE' });
    expect(h).toEqual({ port: 8080, protocol: 'tcp', address: '127.0.0.1', inode: 2181504, uid: 0, processes: [{ pid: 1234, command: 'nginx' }] });
    expect(describePortHolder(h as PortHolder)).toBe('tcp port 8080 is held by pid 1234 (nginx), bound on 127.0.0.1');
  });

  it('names every process sharing the socket (a forking server)', async () => {
    const root = fakeProc([
      { pid: 10, comm: 'apache2', sockets: [2181507] },
      { pid: 11, comm: 'apache2', sockets: [2181507, 2181507] },
    ]);
    roots.push(root);
    const h = (await portHolder(9000, 'tcp', '127.0.0.1', { procRoot: root, endianness: 'LE' })) as PortHolder;
    expect(h.processes.sort((a, b) => a.pid - b.pid)).toEqual([
      { pid: 10, command: 'apache2' },
      { pid: 11, command: 'apache2' },
    ]);
    expect(describePortHolder(h)).toMatch(/^tcp port 9000 is held by pid 1[01] \(apache2\), pid 1[01] \(apache2\)$/);
  });

  it('UDP, and a socket whose process cannot be seen', async () => {
    const root = fakeProc([]);
    roots.push(root);
    const h = (await portHolder(5354, 'udp', '127.0.0.1', { procRoot: root, endianness: 'LE' })) as PortHolder;
    expect(h).toMatchObject({ address: '::', inode: 2181510, processes: [] });
    expect(describePortHolder(h)).toBe('udp port 5354 is held by a process of uid 0 (not visible to this user)');
  });

  it('nothing holds a free port, or one held only on another address', async () => {
    const root = fakeProc([{ pid: 1, comm: 'init', sockets: [2181505] }]);
    roots.push(root);
    expect(await portHolder(8081, 'tcp', '127.0.0.1', { procRoot: root, endianness: 'LE' })).toBeUndefined();
    expect(await portHolder(8443, 'tcp', '127.0.0.1', { procRoot: root, endianness: 'LE' })).toBeUndefined();
    expect(await portHolder(8443, 'tcp', undefined, { procRoot: root, endianness: 'LE' })).toMatchObject({ address: '::1', processes: [{ pid: 1, command: 'init' }] });
  });
});

describe('forwarding errors', () => {
  const holder: PortHolder = { port: 8080, protocol: 'tcp', address: '0.0.0.0', inode: 1, uid: 0, processes: [{ pid: 1234, command: 'nginx' }] };

  it('a taken port names the port, the protocol and who holds it, and how to get past it', () => {
    const e = new ForwardBindError({ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8080, code: 'EADDRINUSE', detail: 'listen EADDRINUSE', holder });
    expect(e.message).toBe('Cannot forward host port 127.0.0.1:8080/tcp: it is already in use by pid 1234 (nginx).');
    expect(e.hint).toMatch(/auto_correct: true/);
    expect(e.exitCode).toBe(ExitCode.user);
    expect([e.hostPort, e.protocol, e.code, e.holder]).toEqual([8080, 'tcp', 'EADDRINUSE', holder]);
  });

  it('a taken port whose holder is unknown, a privileged port, an address the host lacks', () => {
    expect(new ForwardBindError({ protocol: 'udp', hostIp: '::1', hostPort: 53, code: 'EADDRINUSE', detail: '' }).message).toBe(
      'Cannot forward host port [::1]:53/udp: it is already in use.',
    );
    const acces = new ForwardBindError({ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 80, code: 'EACCES', detail: '' });
    expect(acces.message).toBe('Cannot forward host port 0.0.0.0:80/tcp: permission denied.');
    expect(acces.hint).toMatch(/above 1023/);
    const notHere = new ForwardBindError({ protocol: 'tcp', hostIp: '10.1.2.3', hostPort: 8080, code: 'EADDRNOTAVAIL', detail: '' });
    expect(notHere.message).toMatch(/10\.1\.2\.3 is not an address of this host/);
    expect(new ForwardBindError({ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 1, code: 'EINVAL', detail: 'tcp 127.0.0.1:1: weird' }).message).toMatch(/weird$/);
  });

  it('a forwarder that did not start points at its log; a timeout has the timeout exit code', () => {
    const e = new ForwarderStartError('It ended.', { logFile: '/x/forward.log', logTail: 'line 1\nline 2\n' });
    expect(e.message).toBe('It ended.\nLast lines of its log:\nline 1\nline 2');
    expect(e.hint).toBe("See the forwarder's log: /x/forward.log");
    expect(new ForwarderStartError('Slow.', { timedOut: true }).exitCode).toBe(ExitCode.timeout);
  });

  it('no free port says where it looked', () => {
    expect(new NoFreePortError('127.0.0.1', 8080, 'tcp', 100).message).toBe('No free tcp port found on 127.0.0.1 above 8080 (100 tried).');
  });
});

describe('nextFreePort with a given check', () => {
  const takenBut = (...free: number[]) => async (_ip: string, port: number): Promise<boolean> => free.includes(port);

  it('skips excluded ports without counting them as tries', async () => {
    expect(await nextFreePort('127.0.0.1', 8080, 'tcp', new Set([8081, 8082]), 1, takenBut(8083))).toBe(8083);
  });

  it('throws NoFreePortError after `tries` checks', async () => {
    await expect(nextFreePort('127.0.0.1', 8080, 'udp', new Set(), 3, takenBut(8084))).rejects.toThrow('No free udp port found on 127.0.0.1 above 8080 (3 tried).');
  });
});
