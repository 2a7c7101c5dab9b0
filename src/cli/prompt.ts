/**
 * Questions on the terminal, with enquirer. Prompts write to stderr so that stdout stays
 * the command's output. Ctrl-C (or Escape, or the end of input) during a question ends
 * it with an InterruptedError: the command stops with exit 130 and does nothing.
 */
import Enquirer from 'enquirer';
import { InterruptedError } from '../errors.js';

/** Where a prompt reads keys and draws; tests pass their own streams. */
export interface PromptStreams {
  /** Default process.stdin. Must be a terminal (enquirer reads it in raw mode). */
  stdin?: NodeJS.ReadStream;
  /** Default process.stderr. */
  stdout?: NodeJS.WriteStream;
}

/** What a validator says: true, or the message shown under the answer. */
export type Validate = (value: string) => true | string;

export interface Choice {
  /** What the prompt resolves with. */
  name: string;
  /** What is shown (default: the name). */
  message?: string;
  hint?: string;
}

interface EnquirerPrompt {
  run(): Promise<unknown>;
  cancel(): Promise<void>;
}
type PromptClass = new (options: Record<string, unknown>) => EnquirerPrompt;
// enquirer's typings do not declare its prompt classes, which it exports at run time.
const prompts = Enquirer as unknown as { Confirm: PromptClass; Input: PromptClass; Select: PromptClass };

const END_GRACE_MS = 100;

async function ask(Prompt: PromptClass, options: Record<string, unknown>, streams: PromptStreams): Promise<unknown> {
  const stdin = streams.stdin ?? process.stdin;
  const prompt = new Prompt({ ...options, stdin, stdout: streams.stdout ?? process.stderr });
  // enquirer waits forever on an input that ended: cancel instead, once the keys that
  // came before the end (handled asynchronously) have had their turn.
  let timer: NodeJS.Timeout | undefined;
  const onEnd = (): void => {
    timer = setTimeout(() => void prompt.cancel(), END_GRACE_MS);
  };
  stdin.once('end', onEnd);
  try {
    return await prompt.run();
  } catch (err) {
    // enquirer rejects a cancelled prompt with a bare string, not an Error.
    if (err instanceof Error) throw err;
    throw new InterruptedError('waiting for an answer');
  } finally {
    stdin.off('end', onEnd);
    clearTimeout(timer);
  }
}

/**
 * Asks a yes/no question; no unless the user answers y. A trailing "(y/N)" in the
 * question is dropped: the prompt shows its own.
 */
export async function confirm(question: string, streams: PromptStreams = {}): Promise<boolean> {
  const message = question.replace(/\s*[([]y\/n[)\]]\s*$/i, '').trim();
  const format = (value: unknown): string => (value === true ? 'yes' : 'no');
  return (await ask(prompts.Confirm, { name: 'confirm', message, initial: false, format }, streams)) === true;
}

/** Asks for a line of text; an empty answer is `initial`. The answer comes back trimmed. */
export async function askText(
  question: { message: string; initial?: string; validate?: Validate },
  streams: PromptStreams = {},
): Promise<string> {
  const { validate } = question;
  const answer = await ask(
    prompts.Input,
    {
      name: 'text',
      message: question.message,
      ...(question.initial === undefined ? {} : { initial: question.initial }),
      ...(validate === undefined ? {} : { validate: (value: string) => validate(String(value).trim()) }),
    },
    streams,
  );
  return String(answer).trim();
}

/** Asks for one of `choices` (arrow keys, Enter); resolves with the chosen name. */
export async function askChoice(question: { message: string; choices: readonly Choice[]; initial?: string }, streams: PromptStreams = {}): Promise<string> {
  const initial = question.initial === undefined ? 0 : Math.max(0, question.choices.findIndex((c) => c.name === question.initial));
  const answer = await ask(
    prompts.Select,
    { name: 'choice', message: question.message, choices: question.choices.map((c) => ({ ...c })), initial },
    streams,
  );
  return String(answer);
}
