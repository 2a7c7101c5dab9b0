/**
 * Every command's arguments ignore stdin: oclif would read a missing argument from a
 * piped stdin (eating, say, what `echo data | vmenv ssh -c cat` sends to the guest).
 */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const commandsDir = join(import.meta.dirname, '..', '..', '..', 'src', 'cli', 'commands');

function commandFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? commandFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('command arguments', () => {
  const files = commandFiles(commandsDir);
  it('finds the commands', () => expect(files.length).toBeGreaterThan(15));
  for (const file of files) {
    it(`${relative(commandsDir, file)}: every argument sets ignoreStdin`, async () => {
      const mod = (await import(pathToFileURL(file).href)) as { default: { args?: Record<string, { ignoreStdin?: boolean }> } };
      for (const [name, arg] of Object.entries(mod.default.args ?? {})) expect(arg.ignoreStdin, name).toBe(true);
    });
  }
});
