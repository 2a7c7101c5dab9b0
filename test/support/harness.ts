/**
 * The test host made by `test/host/setup.sh`: a libvirtd of the harness's own
 * inside network namespace `vmenv-test` (socket in /run/vmenv-test/libvirt,
 * never /run/libvirt), a `dir` storage pool, and an OpenSSH server on
 * 127.0.0.1 for the qemu+ssh transport tests.
 *
 * Integration and end-to-end tests call `testHost()`; it throws when the
 * harness is missing. Tests never skip for lack of a host, in CI or elsewhere.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';

export interface TestHost {
  /** libvirt URI of the harness daemon: qemu:///system?socket=… */
  uri: string;
  /** Path of the daemon's read-write unix socket. */
  socket: string;
  /** Name of the harness storage pool (type dir, active, autostarted). */
  pool: string;
  /** Target directory of that pool. */
  poolDir: string;
  /** Network namespace the daemon and all of its guest networks live in. */
  netns: string;
  /** sshd on 127.0.0.1 (host namespace) that can reach `socket` via `nc -U`. */
  ssh: { port: number; user: string; keyPath: string };
  /** The harness state directory (/var/lib/vmenv-test-host). */
  state: string;
  /** A normal user, for qemu:///session tests (root's session is the system daemon). */
  sessionUser: string;
}

/** Where setup.sh writes its `export NAME='value'` lines. */
export const TEST_HOST_ENV_FILE = '/var/lib/vmenv-test-host/env';

const SETUP_HINT = 'run `bash test/host/setup.sh` first (as root)';

const VARS = [
  'VMENV_TEST_URI',
  'VMENV_TEST_SOCKET',
  'VMENV_TEST_POOL',
  'VMENV_TEST_POOL_DIR',
  'VMENV_TEST_NETNS',
  'VMENV_TEST_SSH_PORT',
  'VMENV_TEST_SSH_USER',
  'VMENV_TEST_SSH_KEY',
  'VMENV_TEST_STATE',
  'VMENV_TEST_SESSION_USER',
] as const;
type Var = (typeof VARS)[number];

/** Parses the `export NAME='value'` / `NAME="value"` / `NAME=value` lines of an env file. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2] ?? '';
    if (value.length >= 2 && (value[0] === "'" || value[0] === '"') && value.endsWith(value[0])) {
      value = value.slice(1, -1);
    }
    out[m[1] as string] = value;
  }
  return out;
}

function harnessError(detail: string): Error {
  return new Error(`vmenv test host is not available: ${detail}; ${SETUP_HINT}`);
}

let cached: TestHost | undefined;

/**
 * The harness's coordinates, from the VMENV_TEST_* environment variables
 * (set by test/run.sh), else from /var/lib/vmenv-test-host/env. Throws a clear
 * Error when the harness has not been set up or its daemon socket is gone.
 */
export function testHost(): TestHost {
  if (cached && existsSync(cached.socket)) return cached;

  const values: Partial<Record<Var, string>> = {};
  for (const name of VARS) {
    const v = process.env[name];
    if (v !== undefined && v !== '') values[name] = v;
  }
  if (VARS.some((name) => values[name] === undefined)) {
    let fromFile: Record<string, string>;
    try {
      fromFile = parseEnvFile(readFileSync(TEST_HOST_ENV_FILE, 'utf8'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw harnessError(
        code === 'ENOENT'
          ? `VMENV_TEST_* variables are not set and ${TEST_HOST_ENV_FILE} does not exist`
          : `cannot read ${TEST_HOST_ENV_FILE} (${code ?? String(err)})`,
      );
    }
    for (const name of VARS) {
      if (values[name] === undefined && fromFile[name]) values[name] = fromFile[name];
    }
  }
  const missing = VARS.filter((name) => values[name] === undefined);
  if (missing.length > 0) {
    throw harnessError(`missing ${missing.join(', ')} (environment and ${TEST_HOST_ENV_FILE})`);
  }
  const v = values as Record<Var, string>;

  const port = Number(v.VMENV_TEST_SSH_PORT);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw harnessError(`VMENV_TEST_SSH_PORT is not a port number: ${JSON.stringify(v.VMENV_TEST_SSH_PORT)}`);
  }
  let isSocket = false;
  try {
    isSocket = statSync(v.VMENV_TEST_SOCKET).isSocket();
  } catch {
    // reported below
  }
  if (!isSocket) {
    throw harnessError(`the harness libvirtd socket ${v.VMENV_TEST_SOCKET} does not exist (daemon not running?)`);
  }
  if (!existsSync(v.VMENV_TEST_SSH_KEY)) {
    throw harnessError(`the harness ssh key ${v.VMENV_TEST_SSH_KEY} does not exist`);
  }

  cached = {
    uri: v.VMENV_TEST_URI,
    socket: v.VMENV_TEST_SOCKET,
    pool: v.VMENV_TEST_POOL,
    poolDir: v.VMENV_TEST_POOL_DIR,
    netns: v.VMENV_TEST_NETNS,
    ssh: { port, user: v.VMENV_TEST_SSH_USER, keyPath: v.VMENV_TEST_SSH_KEY },
    state: v.VMENV_TEST_STATE,
    sessionUser: v.VMENV_TEST_SESSION_USER,
  };
  return cached;
}

/**
 * Wraps a command so it runs inside the harness network namespace, where the
 * guests' networks are: the only way a test may send traffic to a guest
 * (network rule: from the host namespace, loopback only).
 */
export function inNetns(cmd: string[]): string[] {
  return ['ip', 'netns', 'exec', testHost().netns, ...cmd];
}
