import { plural } from '../../util/format.js';
import type { Check, DoctorReport } from './doctor.js';

/**
 * `vmenv doctor`'s report as text: one line per check with its mark and what it found,
 * the items it lists, and a "Fix:" line under each check that is not ok; then a summary.
 */
export interface RenderOptions {
  color?: boolean;
}

const MARKS: Record<Check['status'], { text: string; color: string }> = {
  ok: { text: ' ok ', color: '32' },
  warn: { text: 'warn', color: '33' },
  fail: { text: 'FAIL', color: '1;31' },
  skip: { text: 'skip', color: '2' },
};

/** Pure. */
export function renderDoctorReport(report: DoctorReport, options: RenderOptions = {}): string {
  const paint = (code: string, text: string): string => (options.color === true ? `\u001B[${code}m${text}\u001B[0m` : text);
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const indent = ' '.repeat(7 + width + 2);
  const lines: string[] = [];
  for (const check of report.checks) {
    const mark = MARKS[check.status];
    lines.push(`[${paint(mark.color, mark.text)}] ${check.name.padEnd(width)}  ${check.detail}`);
    for (const item of check.items ?? []) lines.push(`${indent}- ${item}`);
    if (check.fix !== null && check.status !== 'ok') lines.push(`${indent}Fix: ${check.fix}`);
  }
  const fails = report.checks.filter((c) => c.status === 'fail').length;
  const warns = report.checks.filter((c) => c.status === 'warn').length;
  lines.push('');
  if (fails === 0) {
    lines.push(`Ready: guests will run as '${report.domainType}' domains on ${report.uri}${warns > 0 ? ` (${plural(warns, 'warning')})` : ''}.`);
  } else if (report.exitCode === 3) {
    lines.push(`libvirt cannot be reached at ${report.uri}: fix that first${fails > 1 ? ` (${plural(fails, 'problem')} in all)` : ''}.`);
  } else {
    lines.push(`${plural(fails, 'problem')} to fix${warns > 0 ? `, ${plural(warns, 'warning')}` : ''}.`);
  }
  return lines.join('\n');
}
