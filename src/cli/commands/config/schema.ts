import { Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';

export default class ConfigSchema extends BaseCommand {
  static override summary = 'Print the JSON Schema of vmenv.yaml.';
  static override description = `Prints the JSON Schema (draft 2020-12) of vmenv.yaml: every key, its type, its default and a description, so that editors complete and check the file as you type. It is generated from the same definitions vmenv validates with.

With the YAML language server (VS Code's YAML extension, and others), put the schema next to the file and name it on the first line of vmenv.yaml:
  # yaml-language-server: $schema=vmenv.schema.json`;

  static override examples = [
    { description: 'Print the schema.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Write it next to vmenv.yaml for your editor.', command: '<%= config.bin %> <%= command.id %> --output vmenv.schema.json' },
  ];

  static override flags = {
    output: Flags.string({ char: 'o', description: 'Write the schema to this file instead of printing it.', helpValue: '<file>' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ConfigSchema);
    const { configJsonSchema } = await import('../../../config/json-schema.js');
    const text = `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
    if (flags.output === undefined) {
      process.stdout.write(text);
      return;
    }
    const { writeFile } = await import('node:fs/promises');
    await writeFile(flags.output, text);
    this.log(`Wrote ${flags.output}.`);
  }
}
