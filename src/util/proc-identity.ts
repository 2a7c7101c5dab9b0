/**
 * Who a pid is now: its command line and start time (from /proc), so that a recorded
 * pid (a forwarder's, a lock holder's) is only taken for the process that was recorded,
 * not another one that got the same number later.
 */
import { readFileSync } from 'node:fs';

export interface ProcessIdentity {
  argv: string[];
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22). */
  startTicks: number;
  /** The one-letter state of /proc/<pid>/stat (`Z`: exited, not yet reaped). */
  state: string;
}

/** Field 3 (state) and 22 (start time) of a /proc/<pid>/stat line; undefined when it cannot be read. */
export function parseProcStat(text: string): { state: string; startTicks: number } | undefined {
  // The command name (field 2) may hold spaces and parentheses: count from after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 2).trim().split(' ');
  const state = rest[0];
  const startTicks = Number(rest[19]);
  if (state === undefined || !/^[A-Za-z]$/.test(state) || !Number.isSafeInteger(startTicks)) return undefined;
  return { state, startTicks };
}

/** NUL-separated arguments of /proc/<pid>/cmdline. */
export function parseCmdline(text: string): string[] {
  const parts = text.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

function readProcStat(pid: number, procRoot: string): { state: string; startTicks: number } | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    return parseProcStat(readFileSync(`${procRoot}/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The start time of `pid` in clock ticks since boot; undefined when there is no such process (or no /proc). */
export function processStartTicks(pid: number, procRoot = '/proc'): number | undefined {
  return readProcStat(pid, procRoot)?.startTicks;
}

export function processIdentity(pid: number, procRoot = '/proc'): ProcessIdentity | undefined {
  const stat = readProcStat(pid, procRoot);
  if (stat === undefined) return undefined;
  try {
    return { argv: parseCmdline(readFileSync(`${procRoot}/${pid}/cmdline`, 'utf8')), ...stat };
  } catch {
    return undefined;
  }
}
