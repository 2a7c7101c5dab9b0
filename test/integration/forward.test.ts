/**
 * The port forwarder as a real process (dist/net/forward/main.js: build first with
 * `npx tsc -p tsconfig.build.json`), all on loopback: echo servers in this process
 * stand in for guests, and one inside the harness netns for a guest that only that
 * namespace reaches (loopback there too). Every process started here is ended by pid.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ForwardBindError,
  ForwarderStartError,
  forwarderRunning,
  isPortFree,
  nextFreePort,
  portHolder,
  startForwarder,
  stopForwarder,
  type ForwardMapping,
  type ForwardSpec,
  type RunningForwarder,
} from '../../src/net/forward/index.js';
import { testHost } from '../support/harness.js';

const exec = promisify(execFile);
const host = testHost();
const LO = '127.0.0.1';
const dir = mkdtempSync(join(tmpdir(), 'vmenv-it-forward-'));
const entry = join(import.meta.dirname, '..', '..', 'dist', 'net', 'forward', 'main.js');
const started: RunningForwarder[] = [];
const children: ChildProcess[] = [];
const closers: Array<() => void> = [];
let logs = 0;

function logFile(): string {
  return join(dir, `forward-${++logs}.log`);
}

async function start(spec: ForwardSpec, log = logFile()): Promise<RunningForwarder> {
  const f = await startForwarder(spec, { logFile: log, entry });
  started.push(f);
  return f;
}

function tcpEchoServer(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
    server.listen(0, LO, () => resolve((server.address() as net.AddressInfo).port));
    closers.push(() => server.close());
  });
}

function udpEchoServer(): Promise<number> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (m, r) => socket.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
    socket.bind(0, LO, () => resolve(socket.address().port));
    closers.push(() => socket.close());
  });
}

/** Sends `payload`, half-closes, and reads until the far end closes. */
function tcpExchange(port: number, payload: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ port, host: LO, allowHalfOpen: true });
    let got = '';
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error(`no answer through port ${port} within ${timeoutMs} ms (got ${JSON.stringify(got)})`));
    }, timeoutMs);
    c.on('data', (d) => (got += d.toString()));
    c.on('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
    c.on('end', () => {
      clearTimeout(t);
      c.end();
      resolve(got);
    });
    c.end(payload);
  });
}

function udpExchange(socket: dgram.Socket, port: number, payload: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      socket.off('message', onMessage);
      reject(new Error(`no UDP answer through port ${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (m: Buffer): void => {
      clearTimeout(t);
      resolve(m.toString());
    };
    socket.once('message', onMessage);
    socket.send(payload, port, LO);
  });
}

function udpClient(): Promise<dgram.Socket> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, LO, () => resolve(s));
    closers.push(() => s.close());
  });
}

function holdPort(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, LO, () =>
      resolve({ port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) }),
    );
  });
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The pids whose parent is `pid`. */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(() => {
  expect(existsSync(entry), `${entry} is missing: build with npx tsc -p tsconfig.build.json`).toBe(true);
});

afterAll(async () => {
  for (const f of started) await stopForwarder(f.pid, { startedAt: f.startedAt });
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) c.kill('SIGKILL');
  for (const close of closers) close();
  rmSync(dir, { recursive: true, force: true });
});

describe('forwarding TCP on loopback', () => {
  let guestPort: number;
  let hostPort: number;
  let f: RunningForwarder;

  beforeAll(async () => {
    guestPort = await tcpEchoServer();
    hostPort = await nextFreePort(LO, 20_000 + Math.floor(Math.random() * 20_000), 'tcp');
    f = await start({ mappings: [{ protocol: 'tcp', hostIp: LO, hostPort, guestIp: LO, guestPort }] });
  });

  it('reports the pid, start time and listeners, and is recognised as a forwarder', () => {
    expect(f.listeners).toEqual([{ protocol: 'tcp', hostIp: LO, hostPort, guestIp: LO, guestPort }]);
    expect(forwarderRunning(f.pid)).toBe(true);
    expect(forwarderRunning(f.pid, { startedAt: f.startedAt })).toBe(true);
    expect(forwarderRunning(f.pid, { startedAt: (f.startedAt ?? 0) + 1 })).toBe(false);
    expect(forwarderRunning(f.pid, { tag: 'another-machine' })).toBe(false);
  });

  it('relays data both ways and passes the client half-close on', async () => {
    expect(await tcpExchange(hostPort, 'hello through the forwarder')).toBe('hello through the forwarder');
  });

  it('relays several connections at once, each to its own guest connection', async () => {
    const payloads = Array.from({ length: 8 }, (_, i) => `conn-${i}-${'x'.repeat(i * 10_000)}`);
    expect(await Promise.all(payloads.map((p) => tcpExchange(hostPort, p)))).toEqual(payloads);
  });

  it('a client that resets its connection takes the guest side down with it', async () => {
    const guest = net.createServer({ allowHalfOpen: true }, (c) => c.on('error', () => undefined));
    await new Promise<void>((r) => guest.listen(0, LO, () => r()));
    closers.push(() => guest.close());
    const g = await start({ mappings: [{ protocol: 'tcp', hostIp: LO, hostPort: 0, guestIp: LO, guestPort: (guest.address() as net.AddressInfo).port }] });
    const open = (): Promise<number> => new Promise((r, j) => guest.getConnections((err, n) => (err ? j(err) : r(n))));
    const c = net.connect(g.listeners[0]?.hostPort as number, LO);
    await waitFor('the guest to see the connection', async () => (await open()) === 1);
    c.resetAndDestroy();
    await waitFor('the guest side to close', async () => (await open()) === 0);
    expect(await stopForwarder(g.pid)).toBe('stopped');
  });

  it('shows this forwarder as the holder of its port', async () => {
    const h = await portHolder(hostPort, 'tcp', LO);
    expect(h?.processes.map((p) => p.pid)).toEqual([f.pid]);
    expect(await isPortFree(LO, hostPort, 'tcp')).toBe(false);
  });

  it('resets the client when the guest refuses the connection', async () => {
    const closed = await nextFreePort(LO, guestPort + 100, 'tcp');
    const g = await start({ mappings: [{ protocol: 'tcp', hostIp: LO, hostPort: 0, guestIp: LO, guestPort: closed }] });
    await expect(tcpExchange(g.listeners[0]?.hostPort as number, 'anyone?')).rejects.toThrow(/ECONNRESET/);
    expect(await stopForwarder(g.pid)).toBe('stopped');
  });

  it('stops on SIGTERM, frees the port, and is then no longer recognised', async () => {
    expect(await stopForwarder(f.pid, { startedAt: f.startedAt })).toBe('stopped');
    expect(alive(f.pid)).toBe(false);
    expect(forwarderRunning(f.pid)).toBe(false);
    expect(await isPortFree(LO, hostPort, 'tcp')).toBe(true);
    expect(await stopForwarder(f.pid)).toBe('not-running');
    const log = readFileSync(join(dir, 'forward-1.log'), 'utf8');
    expect(log).toMatch(/ready: tcp 127\.0\.0\.1:\d+ → 127\.0\.0\.1:\d+/);
    expect(log).toMatch(/stopping: SIGTERM\n.*stopped\n$/);
  });
});

describe('forwarding UDP on loopback', () => {
  it('relays datagrams per client, and a client that went quiet gets a new relay', async () => {
    const guestPort = await udpEchoServer();
    const log = logFile();
    const f = await start({ mappings: [{ protocol: 'udp', hostIp: LO, hostPort: 0, guestIp: LO, guestPort }], udpIdleMs: 300 }, log);
    const hostPort = f.listeners[0]?.hostPort as number;
    const a = await udpClient();
    const b = await udpClient();
    expect(await udpExchange(a, hostPort, 'from a')).toBe('echo:from a');
    expect(await udpExchange(b, hostPort, 'from b')).toBe('echo:from b');
    expect(await udpExchange(a, hostPort, 'a again')).toBe('echo:a again');
    await waitFor('the idle relays to be dropped', () => (readFileSync(log, 'utf8').match(/idle, dropped/g) ?? []).length === 2);
    expect(await udpExchange(a, hostPort, 'a after a pause')).toBe('echo:a after a pause');
    expect(readFileSync(log, 'utf8').match(/new client/g)).toHaveLength(3);
    expect(await stopForwarder(f.pid)).toBe('stopped');
    expect(await isPortFree(LO, hostPort, 'udp')).toBe(true);
  });
});

describe('ports that cannot be bound', () => {
  it('a taken TCP port: ForwardBindError naming the port and this process as its holder, nothing left bound', async () => {
    const held = await holdPort();
    const guestPort = await tcpEchoServer();
    const free = await nextFreePort(LO, held.port + 1000, 'tcp');
    const mappings: ForwardMapping[] = [
      { protocol: 'tcp', hostIp: LO, hostPort: free, guestIp: LO, guestPort },
      { protocol: 'tcp', hostIp: LO, hostPort: held.port, guestIp: LO, guestPort },
    ];
    const err = await start({ mappings }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await held.close();
    expect(err).toBeInstanceOf(ForwardBindError);
    const e = err as ForwardBindError;
    expect([e.protocol, e.hostIp, e.hostPort, e.code]).toEqual(['tcp', LO, held.port, 'EADDRINUSE']);
    const me = readFileSync('/proc/self/comm', 'utf8').trim();
    expect(e.holder?.processes).toEqual([{ pid: process.pid, command: me }]);
    expect(e.message).toBe(`Cannot forward host port 127.0.0.1:${held.port}/tcp: it is already in use by pid ${process.pid} (${me}).`);
    expect(e.hint).toMatch(/auto_correct/);
    // The first port was bound, then let go when the second failed.
    expect(await isPortFree(LO, free, 'tcp')).toBe(true);
  });

  it('a taken UDP port is named the same way', async () => {
    const taken = await udpEchoServer();
    const err = await start({ mappings: [{ protocol: 'udp', hostIp: LO, hostPort: taken, guestIp: LO, guestPort: 9 }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForwardBindError);
    expect((err as ForwardBindError).message).toMatch(new RegExp(`^Cannot forward host port 127\\.0\\.0\\.1:${taken}/udp: it is already in use by pid ${process.pid} `));
  });

  it('an address the host does not have', async () => {
    const err = await start({ mappings: [{ protocol: 'tcp', hostIp: '192.0.2.1', hostPort: 8080, guestIp: LO, guestPort: 9 }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForwardBindError);
    expect((err as ForwardBindError).code).toBe('EADDRNOTAVAIL');
  });
});

describe('free ports', () => {
  it('isPortFree and nextFreePort skip taken and excluded ports', async () => {
    const held = await holdPort();
    try {
      expect(await isPortFree(LO, held.port, 'tcp')).toBe(false);
      const next = await nextFreePort(LO, held.port - 1, 'tcp', new Set([held.port + 1]));
      expect(next).toBeGreaterThan(held.port + 1);
      expect(await isPortFree(LO, next, 'tcp')).toBe(true);
    } finally {
      await held.close();
    }
    expect(await isPortFree(LO, held.port, 'tcp')).toBe(true);
  });
});

describe('the forwarder outlives the command that started it', () => {
  it('keeps serving after its starter exits, until stopped by pid', async () => {
    const guestPort = await tcpEchoServer();
    const log = logFile();
    const spec: ForwardSpec = { mappings: [{ protocol: 'tcp', hostIp: LO, hostPort: 0, guestIp: LO, guestPort }] };
    const script = `
      const { startForwarder } = await import(${JSON.stringify(join(import.meta.dirname, '..', '..', 'dist', 'net', 'forward', 'index.js'))});
      const f = await startForwarder(${JSON.stringify(spec)}, { logFile: ${JSON.stringify(log)}, tag: 'machine-1' });
      console.log(JSON.stringify(f));`;
    const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
    const f = JSON.parse(stdout) as RunningForwarder;
    started.push(f);
    expect(forwarderRunning(f.pid, { tag: 'machine-1', startedAt: f.startedAt })).toBe(true);
    expect(await tcpExchange(f.listeners[0]?.hostPort as number, 'still here')).toBe('still here');
    expect(await stopForwarder(f.pid, { tag: 'machine-2' })).toBe('not-running');
    expect(forwarderRunning(f.pid)).toBe(true);
    expect(await stopForwarder(f.pid, { tag: 'machine-1', startedAt: f.startedAt })).toBe('stopped');
    await waitFor('the forwarder to be gone', () => !alive(f.pid));
  });

  it('does not signal a pid that is not a forwarder', async () => {
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(sleeper);
    const pid = sleeper.pid as number;
    expect(forwarderRunning(pid)).toBe(false);
    expect(await stopForwarder(pid)).toBe('not-running');
    expect(alive(pid)).toBe(true);
    sleeper.kill('SIGKILL');
  });
});

describe('guests inside the harness network namespace', () => {
  let ns: { tcp: number; udp: number };

  beforeAll(async () => {
    const { stdout } = await exec('ip', ['-n', host.netns, '-j', 'link', 'show', 'lo']);
    const [lo] = JSON.parse(stdout) as Array<{ flags: string[] }>;
    expect(lo?.flags).toContain('UP');
    // An echo server on the namespace's own loopback: unreachable from the host's namespace.
    const script = `
      const net = require('node:net'); const dgram = require('node:dgram');
      const t = net.createServer({ allowHalfOpen: true }, (s) => { s.write('ns:'); s.pipe(s); });
      const u = dgram.createSocket('udp4');
      u.on('message', (m, r) => u.send(Buffer.concat([Buffer.from('ns:'), m]), r.port, r.address));
      t.listen(0, '127.0.0.1', () => u.bind(0, '127.0.0.1', () =>
        console.log(JSON.stringify({ tcp: t.address().port, udp: u.address().port }))));`;
    const echo = spawn('ip', ['netns', 'exec', host.netns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(echo);
    ns = await new Promise((resolve, reject) => {
      echo.stdout?.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()) as { tcp: number; udp: number }));
      echo.once('exit', (code) => reject(new Error(`the echo server in ${host.netns} exited (${code})`)));
    });
  });

  it('the guest port is not reachable from the host namespace itself', async () => {
    // Same address and port in the host's namespace: refused (or some unrelated server, not ours).
    const direct = await tcpExchange(ns.tcp, 'direct', 3_000).catch((e: Error) => e.message);
    expect(direct.startsWith('ns:')).toBe(false);
  });

  it('relays TCP and UDP from host loopback to the namespace loopback', async () => {
    const f = await start({
      netns: host.netns,
      mappings: [
        { protocol: 'tcp', hostIp: LO, hostPort: 0, guestIp: LO, guestPort: ns.tcp },
        { protocol: 'udp', hostIp: LO, hostPort: 0, guestIp: LO, guestPort: ns.udp },
      ],
    });
    const [t, u] = f.listeners.map((l) => l.hostPort) as [number, number];
    expect(await tcpExchange(t, 'into the namespace')).toBe('ns:into the namespace');
    const payloads = Array.from({ length: 4 }, (_, i) => `ns-conn-${i}`);
    expect(await Promise.all(payloads.map((p) => tcpExchange(t, p)))).toEqual(payloads.map((p) => `ns:${p}`));
    expect(await udpExchange(await udpClient(), u, 'datagram')).toBe('ns:datagram');

    // One relay process inside the namespace serves every connection.
    const relays = childPids(f.pid);
    expect(relays).toHaveLength(1);
    const relay = relays[0] as number;
    expect(readFileSync(`/proc/${relay}/cmdline`, 'utf8')).toContain('--vmenv-forwarder-relay');
    const { stdout: relayNs } = await exec('readlink', [`/proc/${relay}/ns/net`]);
    const { stdout: selfNs } = await exec('readlink', ['/proc/self/ns/net']);
    expect(relayNs).not.toBe(selfNs);

    // Killed outright (no SIGTERM handling), the forwarder takes its relay with it.
    expect(await stopForwarder(f.pid, { startedAt: f.startedAt }, { graceMs: 0 })).toBe('killed');
    await waitFor('the relay to end with its forwarder', () => !alive(relay));
    expect(await isPortFree(LO, t, 'tcp')).toBe(true);
    expect(await isPortFree(LO, u, 'udp')).toBe(true);
  });

  it('a namespace that does not exist: ForwarderStartError with the reason, nothing left bound', async () => {
    const port = await nextFreePort(LO, 30_000 + Math.floor(Math.random() * 10_000), 'tcp');
    const err = await start({ netns: 'vmenv-no-such-ns', mappings: [{ protocol: 'tcp', hostIp: LO, hostPort: port, guestIp: LO, guestPort: 9 }] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ForwarderStartError);
    expect((err as Error).message).toMatch(/network namespace vmenv-no-such-ns.*Cannot open network namespace/);
    expect(await isPortFree(LO, port, 'tcp')).toBe(true);
  });
});
