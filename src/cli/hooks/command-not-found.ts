import type { Hook } from '@oclif/core';

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** An unknown command: say so, suggest the closest one, exit 2 (usage). */
const hook: Hook<'command_not_found'> = async function (opts) {
  const typed = opts.id.replace(/:/g, ' ');
  const commands = opts.config.commandIDs.map((id) => id.replace(/:/g, ' '));
  const best = commands
    .map((c) => ({ c, d: distance(typed, c) }))
    .sort((x, y) => x.d - y.d)[0];
  process.stderr.write(`Error: 'vmenv ${typed}' is not a vmenv command.\n`);
  if (best && best.d <= Math.max(2, Math.floor(typed.length / 3))) {
    process.stderr.write(`Hint: did you mean 'vmenv ${best.c}'? Run 'vmenv --help' for every command.\n`);
  } else {
    process.stderr.write(`Hint: run 'vmenv --help' for every command.\n`);
  }
  process.exit(2);
};

export default hook;
