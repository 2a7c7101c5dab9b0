import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';
import type { InitAnswers } from '../../config/init.js';
import { ExitCode, UserError } from '../../errors.js';
import type { StoredBoxChoice } from '../init-prompts.js';

export default class Init extends BaseCommand {
  static override summary = 'Write a vmenv.yaml for a new project.';
  static override description = `Writes vmenv.yaml in the current directory (or --cwd) from a template, with one machine using BOX (default: the 'tiny' box); every other key is shown as a commented example. Refuses to overwrite an existing file unless --force is given.

Run in a terminal with no BOX, it asks for the box (offering those in the box store), the machine's name, memory and CPUs, checking each answer (--no-interactive to skip the questions; Ctrl-C stops without writing anything). The file it writes always loads without problems.`;

  static override examples = [
    { description: 'Start a project with the default box.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Start a project on Debian 12.', command: '<%= config.bin %> <%= command.id %> debian-12' },
    { description: 'Start from the multi-machine template.', command: '<%= config.bin %> <%= command.id %> debian-12 --template multi' },
    { description: 'One machine named web with 2 GiB, without comments.', command: '<%= config.bin %> <%= command.id %> debian-12 --name web --memory 2G --minimal' },
  ];

  static override args = {
    box: Args.string({ ignoreStdin: true, description: "Box for the machines (a name from 'vmenv box list', a file or a URL). Default: tiny." }),
  };

  static override flags = {
    template: Flags.string({
      char: 't',
      description: 'Template to start from: default (one machine) or multi (two machines).',
      options: ['default', 'multi'],
      default: 'default',
      helpValue: '<name>',
    }),
    name: Flags.string({ char: 'n', description: 'Name of the first machine (default: default; web with --template multi).', helpValue: '<machine>' }),
    memory: Flags.string({ description: 'Memory of the machines: MiB, or a size such as 2G (default: 512).', helpValue: '<size>' }),
    cpus: Flags.string({ description: 'Virtual CPUs of the machines (default: 1).', helpValue: '<n>' }),
    minimal: Flags.boolean({ char: 'm', description: 'Write only the settings, without explanatory comments.' }),
    force: Flags.boolean({ char: 'f', description: 'Overwrite an existing vmenv.yaml.' }),
    interactive: Flags.boolean({
      description: 'Ask for the box, name, memory and CPUs (default: when in a terminal and no BOX is given; needs a terminal).',
      allowNo: true,
    }),
    cwd: Flags.string({ description: 'Folder to write vmenv.yaml in (default: $VMENV_CWD, else the current folder).', helpValue: '<dir>' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Init);
    const { DEFAULT_ANSWERS, initProject, isTemplateName } = await import('../../config/init.js');
    const { projectCwd } = await import('../../config/load.js');
    const { displayPath } = await import('../../config/errors.js');

    const template = flags.template;
    if (!isTemplateName(template)) throw new UserError(`No template named '${template}'.`, { exitCode: ExitCode.usage });
    let answers = {
      box: args.box ?? DEFAULT_ANSWERS.box,
      name: flags.name ?? DEFAULT_ANSWERS.name,
      memory: flags.memory ?? DEFAULT_ANSWERS.memory,
      cpus: flags.cpus ?? DEFAULT_ANSWERS.cpus,
    };
    const terminal = process.stdin.isTTY === true && process.stdout.isTTY === true;
    const interactive = flags.interactive ?? (terminal && args.box === undefined && flags.name === undefined);
    if (interactive) {
      // enquirer reads keys in raw mode; from a pipe, answers typed ahead get lost.
      if (process.stdin.isTTY !== true) {
        throw new UserError('--interactive needs a terminal to ask in, and stdin is not one.', {
          hint: 'Give the settings as arguments instead: vmenv init <box> --name <machine> --memory <size> --cpus <n>.',
          exitCode: ExitCode.usage,
        });
      }
      answers = await this.ask(answers);
    }

    const result = await initProject({
      dir: projectCwd(flags.cwd),
      template,
      answers,
      minimal: flags.minimal,
      force: flags.force,
    });
    this.log(`Wrote ${displayPath(result.path)} (box ${answers.box}).`);
    if (result.parent !== undefined) {
      this.log(`Note: ${displayPath(result.parent)} is in a parent folder; commands run from here on now use this new file.`);
    }
    this.log("Next: 'vmenv up' creates and starts the machine; 'vmenv ssh' logs in.");
  }

  /** The enquirer questions, offering the boxes in the store. */
  private async ask(defaults: InitAnswers): Promise<InitAnswers> {
    const { askInitAnswers } = await import('../init-prompts.js');
    return askInitAnswers(defaults, await storedBoxes());
  }
}

/** The stored boxes by name, newest version first; none when the store cannot be read. */
async function storedBoxes(): Promise<StoredBoxChoice[]> {
  const { listBoxes } = await import('../../box/stored-boxes.js');
  let boxes: Awaited<ReturnType<typeof listBoxes>>;
  try {
    boxes = await listBoxes();
  } catch {
    // The questions still work: the box is typed.
    return [];
  }
  const byName = new Map<string, string[]>();
  for (const b of boxes) byName.set(b.name, [b.version, ...(byName.get(b.name) ?? [])]);
  return [...byName].map(([name, versions]) => ({ name, versions }));
}
