/**
 * The enquirer prompts driven through a stand-in terminal: keys go in on a stream that
 * says it is a TTY, and what the prompt draws is read back from another.
 */
import { PassThrough } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ANSWERS } from '../../../src/config/init.js';
import { ExitCode, InterruptedError } from '../../../src/errors.js';
import { askInitAnswers, boxChoices, OTHER_BOX } from '../../../src/cli/init-prompts.js';
import { askChoice, askText, confirm, type PromptStreams } from '../../../src/cli/prompt.js';

const KEY = { enter: '\r', down: '\x1b[B', up: '\x1b[A', backspace: '\x7f', ctrlC: '\x03', escape: '\x1b' } as const;

/** A fake terminal: enquirer reads `stdin` in raw mode and draws on `stdout`. */
class Terminal {
  readonly stdin = Object.assign(new PassThrough(), { isTTY: true, isRaw: false, setRawMode: (raw: boolean) => ((this.stdin.isRaw = raw), this.stdin) });
  readonly stdout = Object.assign(new PassThrough(), { columns: 100, rows: 30, isTTY: true });
  private raw = '';
  private seen = 0;

  constructor() {
    this.stdout.on('data', (d: Buffer) => (this.raw += d.toString()));
  }

  get streams(): PromptStreams {
    return { stdin: this.stdin as unknown as NodeJS.ReadStream, stdout: this.stdout as unknown as NodeJS.WriteStream };
  }

  /** What was drawn, without escape codes. */
  get text(): string {
    return stripVTControlCharacters(this.raw);
  }

  /** Waits until `what` is drawn (after what earlier waits consumed), then types `keys`. */
  async when(what: string, keys: string): Promise<void> {
    const deadline = Date.now() + 3000;
    for (;;) {
      const at = this.text.indexOf(what, this.seen);
      if (at >= 0) {
        this.seen = at + what.length;
        break;
      }
      if (Date.now() > deadline) throw new Error(`the prompt never showed ${JSON.stringify(what)}; it showed:\n${this.text}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    for (const k of keys.match(/\x1b\[[A-D]|[\s\S]/g) ?? []) this.stdin.write(k);
  }
}

describe('confirm', () => {
  it('y is yes, n is no, Enter is no; the question is shown once with its (y/N)', async () => {
    for (const [keys, expected] of [['y', true], ['n', false], [KEY.enter, false], ['Y', true]] as const) {
      const t = new Terminal();
      const answer = confirm('Destroy web and delete their disks? (y/N) ', t.streams);
      await t.when('Destroy web and delete their disks?', keys);
      expect(await answer).toBe(expected);
      expect(t.text).toContain('Destroy web and delete their disks? (y/N)');
      expect(t.text).not.toContain('(y/N) (y/N)');
    }
  });

  it('Ctrl-C and Escape end it with an InterruptedError (exit 130)', async () => {
    for (const key of [KEY.ctrlC, KEY.escape]) {
      const t = new Terminal();
      const answer = confirm('Sure?', t.streams);
      await t.when('Sure?', key);
      const err = await answer.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InterruptedError);
      expect((err as InterruptedError).exitCode).toBe(ExitCode.interrupted);
    }
  });

  it('an input that ends is an interruption, not a wait forever', async () => {
    const t = new Terminal();
    const answer = confirm('Sure?', t.streams);
    await t.when('Sure?', '');
    t.stdin.end();
    await expect(answer).rejects.toBeInstanceOf(InterruptedError);
  });
});

describe('askText and askChoice', () => {
  it('shows why an answer is refused and waits for a valid one', async () => {
    const t = new Terminal();
    const answer = askText({ message: 'CPUs', initial: '1', validate: (v) => (/^\d+$/.test(v) ? true : `not a number: '${v}'`) }, t.streams);
    await t.when('CPUs', `2x${KEY.enter}`);
    await t.when("not a number: '2x'", `${KEY.backspace}${KEY.enter}`);
    expect(await answer).toBe('2');
  });

  it('Enter takes the initial text; a choice comes back by name', async () => {
    const t = new Terminal();
    const text = askText({ message: 'Name', initial: 'default' }, t.streams);
    await t.when('Name', KEY.enter);
    expect(await text).toBe('default');

    const u = new Terminal();
    const choice = askChoice({ message: 'Pick', choices: [{ name: 'a' }, { name: 'b', message: 'Bee' }, { name: 'c' }], initial: 'b' }, u.streams);
    await u.when('Pick', `${KEY.down}${KEY.enter}`);
    expect(await choice).toBe('c');
  });
});

describe('vmenv init questions', () => {
  const stored = [
    { name: 'debian-12', versions: ['2.0.0', '1.0.0'] },
    { name: 'tiny', versions: ['1.0.0'] },
  ];

  it('offers the stored boxes (the default first when not stored) and "another box"', () => {
    expect(boxChoices('tiny', stored).map((c) => [c.name, c.hint])).toEqual([
      ['debian-12', '2.0.0, 1.0.0'],
      ['tiny', '1.0.0'],
      [OTHER_BOX, 'a name, a .box file or a URL'],
    ]);
    expect(boxChoices('tiny', [stored[0]!]).map((c) => c.name)).toEqual(['tiny', 'debian-12', OTHER_BOX]);
  });

  it('box from the store, then name, memory (refused once) and CPUs', async () => {
    const t = new Terminal();
    const answers = askInitAnswers(DEFAULT_ANSWERS, stored, t.streams);
    // The default (tiny) is preselected: up once reaches debian-12.
    await t.when('Box', `${KEY.up}${KEY.enter}`);
    await t.when('Machine name', `web${KEY.enter}`);
    await t.when('Memory', `2X${KEY.enter}`);
    await t.when("got '2X'", `${KEY.backspace}G${KEY.enter}`);
    await t.when('CPUs', KEY.enter);
    expect(await answers).toEqual({ box: 'debian-12', name: 'web', memory: '2G', cpus: '1' });
    expect(t.text).toContain('2.0.0, 1.0.0');
  });

  it('"another box" asks for it; a bad machine name is refused', async () => {
    const t = new Terminal();
    const answers = askInitAnswers(DEFAULT_ANSWERS, stored, t.streams);
    await t.when('Box', `${KEY.down}${KEY.enter}`);
    await t.when('Box (a name, a .box file or a URL)', KEY.enter);
    await t.when('must not be empty', `./my.box${KEY.enter}`);
    await t.when('Machine name', `Bad Name${KEY.enter}`);
    await t.when('Bad Name', '');
    await t.when('▸', `${KEY.backspace.repeat(8)}db${KEY.enter}`);
    await t.when('Memory', KEY.enter);
    await t.when('CPUs', `4${KEY.backspace}2${KEY.enter}`);
    expect(await answers).toEqual({ box: './my.box', name: 'db', memory: '512', cpus: '2' });
  });

  it('no stored boxes: the box is typed, the default offered; Ctrl-C stops the questions', async () => {
    const t = new Terminal();
    const answers = askInitAnswers(DEFAULT_ANSWERS, [], t.streams);
    await t.when('Box (a name, a .box file or a URL)', KEY.enter);
    await t.when('Machine name', KEY.ctrlC);
    await expect(answers).rejects.toBeInstanceOf(InterruptedError);
    expect(t.text).toContain('tiny');
  });
});
