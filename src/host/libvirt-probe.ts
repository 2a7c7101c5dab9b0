import { describeError } from '../ui/error-report.js';

/**
 * Can vmenv talk to libvirt at this URI? The one place the CLI's host checks touch the
 * libvirt client; it is loaded on demand so that it costs nothing at startup.
 */
export interface LibvirtProbe {
  ok: boolean;
  /** The URI probed (as given, or the default vmenv would use). */
  uri: string;
  /** libvirt's version, "major.minor.release". */
  version?: string;
  hostname?: string;
  error?: string;
  hint?: string;
}

/** What the probe needs from src/libvirt/index.ts (checked against it by tsc below). */
interface LibvirtConnectionLike {
  connectGetLibVersion(): Promise<bigint>;
  connectGetHostname(): Promise<string>;
  close(): Promise<void>;
  readonly uri?: unknown;
}
interface LibvirtClientModule {
  openLibvirt(uri?: string, options?: { signal?: AbortSignal }): Promise<LibvirtConnectionLike>;
}

/** Loaded only when a probe runs, so the client costs nothing at startup. */
const loadClient = async (): Promise<LibvirtClientModule> => import('../libvirt/index.js');

export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;

/** libvirt encodes versions as major * 1_000_000 + minor * 1000 + release. Pure. */
export function formatLibvirtVersion(encoded: bigint | number): string {
  const v = BigInt(encoded);
  return `${v / 1_000_000n}.${(v / 1000n) % 1000n}.${v % 1000n}`;
}

/** The URI that will be used when none is given, for messages. */
export function describeDefaultUri(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['VMENV_LIBVIRT_URI'] || env['LIBVIRT_DEFAULT_URI'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'default (qemu:///system if reachable, else qemu:///session)';
}

class ProbeTimeout extends Error {
  constructor(
    readonly what: string,
    ms: number,
  ) {
    super(`no answer from libvirt after ${(ms / 1000).toFixed(1)} s while ${what}`);
    this.name = 'ProbeTimeout';
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeTimeout(what, ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function isMissingClient(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return (
    e !== null &&
    typeof e === 'object' &&
    e.code === 'ERR_MODULE_NOT_FOUND' &&
    typeof e.message === 'string' &&
    e.message.includes('libvirt/index.')
  );
}

export async function probeLibvirt(
  uri: string | undefined,
  options: { timeoutMs?: number } = {},
): Promise<LibvirtProbe> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  let shownUri = uri ?? describeDefaultUri();

  let client: LibvirtClientModule;
  try {
    client = await loadClient();
  } catch (err) {
    if (isMissingClient(err)) {
      return {
        ok: false,
        uri: shownUri,
        error: 'this build of vmenv has no libvirt client (dist/libvirt/index.js is missing)',
        hint: "The libvirt client is still being written; rebuild with 'npm run build' once it is in.",
      };
    }
    return {
      ok: false,
      uri: shownUri,
      error: `cannot load the libvirt client: ${err instanceof Error ? err.message : String(err)}`,
    };
  }

  const cancel = new AbortController();
  const opening = client.openLibvirt(uri, { signal: cancel.signal });
  let conn: LibvirtConnectionLike;
  try {
    conn = await withTimeout(opening, timeoutMs, 'connecting');
  } catch (err) {
    // Give up on the attempt; a connection that opens anyway must not keep the process alive.
    cancel.abort();
    opening.then((late) => late.close()).catch(() => undefined);
    return failure(shownUri, err);
  }

  try {
    if (typeof conn.uri === 'string' && conn.uri !== '') shownUri = conn.uri;
    const version = formatLibvirtVersion(await withTimeout(conn.connectGetLibVersion(), timeoutMs, 'asking its version'));
    const result: LibvirtProbe = { ok: true, uri: shownUri, version };
    try {
      result.hostname = await withTimeout(conn.connectGetHostname(), timeoutMs, 'asking its hostname');
    } catch {
      // The hostname is a nicety; a daemon that cannot tell it still works.
    }
    return result;
  } catch (err) {
    return failure(shownUri, err);
  } finally {
    await withTimeout(conn.close(), timeoutMs, 'closing').catch(() => undefined);
  }
}

function failure(uri: string, err: unknown): LibvirtProbe {
  if (err instanceof ProbeTimeout) {
    return {
      ok: false,
      uri,
      error: err.message,
      hint:
        err.what === 'connecting'
          ? 'Is the daemon running, and (for qemu+ssh:// or qemu+tcp://) is the host reachable?'
          : 'The daemon accepted the connection but does not answer; is it stuck or overloaded? Try again, or restart it.',
    };
  }
  const report = describeError(err);
  const result: LibvirtProbe = { ok: false, uri, error: report.message };
  if (report.hint !== undefined) result.hint = report.hint;
  return result;
}
