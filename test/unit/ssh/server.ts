/**
 * An in-process ssh2 server on 127.0.0.1 for the unit tests: one host key, one
 * authorized user key (or none: every key refused), exec requests answered by a
 * small command table.
 */
import { timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { Connection, ParsedKey, ServerChannel } from 'ssh2';
import { generateMachineKey } from '../../../src/ssh/keys.js';

const { Server, utils } = ssh2;

export function parsedKey(text: string): ParsedKey {
  const k = utils.parseKey(text);
  if (k instanceof Error) throw k;
  return Array.isArray(k) ? k[0]! : k;
}

export interface ExecCall {
  command: string;
  env: Record<string, string>;
  pty: boolean;
}

/** Answers a command: write to the channel, then exit. */
export type CommandHandler = (ch: ServerChannel, call: ExecCall) => void;

export const defaultCommands: CommandHandler = (ch, call) => {
  const c = call.command;
  let m: RegExpExecArray | null;
  if (c === 'true') {
    ch.exit(0);
    ch.end();
  } else if ((m = /^exit (\d+)$/.exec(c))) {
    ch.exit(Number(m[1]));
    ch.end();
  } else if (c === 'outerr') {
    ch.write('to stdout\n');
    ch.stderr.write('to stderr\n');
    ch.exit(0);
    ch.end();
  } else if (c === 'cat') {
    ch.on('data', (d: Buffer) => ch.write(d));
    ch.on('end', () => {
      ch.exit(0);
      ch.end();
    });
  } else if (c === 'env') {
    ch.write(Object.entries(call.env).map(([k, v]) => `${k}=${v}\n`).join(''));
    ch.exit(0);
    ch.end();
  } else if (c === 'killed') {
    ch.exit('KILL', false, 'killed');
    ch.end();
  } else if (c === 'hang') {
    // never answers
  } else {
    ch.stderr.write(`sh: ${c}: not found\n`);
    ch.exit(127);
    ch.end();
  }
};

export interface TestServerOptions {
  hostKey: string;
  /** The accepted user key (public part); undefined refuses every key. */
  userKey?: string;
  port?: number;
  commands?: CommandHandler;
}

export interface TestServer {
  port: number;
  calls: ExecCall[];
  /** Users that authenticated. */
  users: string[];
  connections: number;
  /** Live client connections (to cut them in tests). */
  clients: Set<Connection>;
  close(): Promise<void>;
}

export async function startTestServer(o: TestServerOptions): Promise<TestServer> {
  const accepted = o.userKey === undefined ? undefined : parsedKey(o.userKey);
  const state: TestServer = {
    port: 0,
    calls: [],
    users: [],
    connections: 0,
    clients: new Set(),
    close: async () => undefined,
  };
  const server = new Server({ hostKeys: [o.hostKey] }, (client) => {
    state.connections++;
    state.clients.add(client);
    client.on('close', () => state.clients.delete(client));
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || accepted === undefined) return ctx.reject(['publickey']);
      const data = accepted.getPublicSSH();
      const ok =
        ctx.key.algo === accepted.type &&
        ctx.key.data.length === data.length &&
        timingSafeEqual(ctx.key.data, data) &&
        (!ctx.signature || accepted.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true);
      if (!ok) return ctx.reject(['publickey']);
      if (ctx.signature) state.users.push(ctx.username);
      ctx.accept();
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        const env: Record<string, string> = {};
        let pty = false;
        session.on('env', (acc, _rej, info) => {
          env[info.key] = info.val;
          acc?.();
        });
        session.on('pty', (acc) => {
          pty = true;
          acc?.();
        });
        session.on('exec', (acceptExec, _reject, info) => {
          const call = { command: info.command, env: { ...env }, pty };
          state.calls.push(call);
          (o.commands ?? defaultCommands)(acceptExec(), call);
        });
      });
    });
    client.on('error', () => undefined);
  });
  server.listen(o.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  state.port = (server.address() as AddressInfo).port;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const c of state.clients) c.end();
      server.close(() => resolve());
    });
  return state;
}

/** A TCP server that accepts and then does `behaviour` (never a banner). */
export async function startRawServer(behaviour: 'close' | 'silent', port = 0): Promise<{ port: number; accepted: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { port: 0, accepted: 0, close: async () => undefined as void };
  const server: NetServer = createServer((s) => {
    state.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    if (behaviour === 'close') s.destroy();
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  state.port = (server.address() as AddressInfo).port;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return state;
}

/** A port on 127.0.0.1 that nothing listens on (just released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** An ed25519 pair (vmenv's generator: ssh2's drops leading zero bytes now and then). */
export function keyPair(): { private: string; public: string } {
  const k = generateMachineKey('test');
  return { private: k.privateKey, public: k.publicKey };
}
