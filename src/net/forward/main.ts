/**
 * The forwarder process (dist/net/forward/main.js), started by process.ts:
 *
 *     node main.js --vmenv-forwarder <spec JSON | spec file> [--tag=<tag>]
 *
 * and, inside a network namespace, by the forwarder itself:
 *
 *     ip netns exec <ns> node main.js --vmenv-forwarder-relay
 *
 * Logs go to stdout/stderr (the starter points them at a log file). Exit codes: 0 after
 * SIGTERM/SIGINT, 1 when a listener could not be bound or the relay failed, 2 for a bad
 * spec or command line, 70 for a bug.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ForwarderExit, runForwarder, sendStartReport } from './forwarder.js';
import { FORWARDER_FLAG, RELAY_FLAG } from './messages.js';
import { runNetnsRelay } from './netns.js';
import { parseForwardSpecArg, type ForwardSpec } from './spec.js';

const args = process.argv.slice(2);
const role = args.includes(RELAY_FLAG) ? 'relay' : 'forwarder';

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${role}[${process.pid}] ${line}\n`);
}

/** Reports a failure to start (to the starter too) and lets the process end with `code`. */
function fail(code: number, message: string): Promise<void> {
  log(message);
  process.exitCode = code;
  return sendStartReport({ kind: 'failed', message });
}

async function forward(): Promise<void> {
  const at = args.indexOf(FORWARDER_FLAG);
  const specArg = at >= 0 ? args[at + 1] : undefined;
  if (specArg === undefined) return fail(ForwarderExit.badSpec, `usage: main.js ${FORWARDER_FLAG} <spec JSON | spec file> [--tag=<tag>]`);
  let spec: ForwardSpec;
  try {
    spec = parseForwardSpecArg(specArg, (p) => readFileSync(p, 'utf8'));
  } catch (err) {
    return fail(ForwarderExit.badSpec, (err as Error).message);
  }
  log(`starting: ${JSON.stringify(spec)}`);
  await runForwarder(spec, fileURLToPath(import.meta.url), log);
}

process.on('uncaughtException', (err) => {
  log(`bug: ${err.stack ?? err.message}`);
  process.exit(ForwarderExit.bug);
});

if (role === 'relay') {
  runNetnsRelay(log);
} else {
  forward().catch((err: unknown) => {
    log(`bug: ${(err as Error).stack ?? String(err)}`);
    process.exit(ForwarderExit.bug);
  });
}
