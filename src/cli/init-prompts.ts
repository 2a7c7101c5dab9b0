/**
 * The questions of an interactive `vmenv init`: the box (chosen among the stored ones,
 * or typed), the machine's name, memory and CPUs, each checked as vmenv.yaml would
 * check it before the next question.
 */
import { answerProblem, type InitAnswers } from '../config/init.js';
import { askChoice, askText, type Choice, type PromptStreams, type Validate } from './prompt.js';

/** A box in the store, with its versions (newest first). */
export interface StoredBoxChoice {
  name: string;
  versions: string[];
}

/** The Select entry that switches to typing a box; its name cannot be a box name. */
export const OTHER_BOX = ':other';

function validator(field: keyof InitAnswers): Validate {
  return (value) => answerProblem(field, value) ?? true;
}

/** The box choices: the default first when it is not stored, then the stored boxes, then "another". */
export function boxChoices(defaultBox: string, stored: readonly StoredBoxChoice[]): Choice[] {
  const choices: Choice[] = [];
  if (!stored.some((b) => b.name === defaultBox)) choices.push({ name: defaultBox, hint: 'not in the box store yet' });
  for (const b of stored) choices.push({ name: b.name, hint: b.versions.join(', ') });
  choices.push({ name: OTHER_BOX, message: 'another box…', hint: 'a name, a .box file or a URL' });
  return choices;
}

async function askBox(defaultBox: string, stored: readonly StoredBoxChoice[], streams: PromptStreams): Promise<string> {
  const typed = (initial: string): Promise<string> => askText({ message: 'Box (a name, a .box file or a URL)', initial, validate: validator('box') }, streams);
  if (stored.length === 0) return typed(defaultBox);
  const chosen = await askChoice({ message: 'Box', choices: boxChoices(defaultBox, stored), initial: defaultBox }, streams);
  return chosen === OTHER_BOX ? typed('') : chosen;
}

/** Asks the four questions, starting from `defaults`; resolves with valid answers. */
export async function askInitAnswers(defaults: InitAnswers, stored: readonly StoredBoxChoice[], streams: PromptStreams = {}): Promise<InitAnswers> {
  const box = await askBox(defaults.box, stored, streams);
  const name = await askText({ message: 'Machine name', initial: defaults.name, validate: validator('name') }, streams);
  const memory = await askText({ message: 'Memory (MiB, or with a unit: 2G)', initial: defaults.memory, validate: validator('memory') }, streams);
  const cpus = await askText({ message: 'CPUs', initial: defaults.cpus, validate: validator('cpus') }, streams);
  return { box, name, memory, cpus };
}
