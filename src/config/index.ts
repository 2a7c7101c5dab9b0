/**
 * vmenv.yaml: find it, load it (parse → defaults → validate, every problem at once),
 * its JSON Schema, and `vmenv init`.
 *
 *   const { config, warnings } = await loadProject(projectCwd(flags.cwd));
 *   const machine = selectMachine(config, args.machine);
 */
export type {
  AnsibleProvisioner,
  BootConfig,
  BoxRef,
  ConfigProblem,
  DiskBus,
  DiskConfig,
  DiskFormat,
  Driver,
  FileProvisioner,
  Firmware,
  ForwardedPort,
  LoadedConfig,
  MachineConfig,
  MachineType,
  NetworkConfig,
  NetworkMode,
  NinePAccessMode,
  ProjectConfig,
  Protocol,
  ProvisionerType,
  ProvisionRun,
  Provisioner,
  ShellProvisioner,
  ShutdownConfig,
  ShutdownMode,
  SshConfig,
  SuspendMode,
  SyncedFolder,
  SyncedFolderType,
} from './types.js';
export { ConfigError, ProjectNotFoundError, formatProblem } from './errors.js';
export {
  type CheckResult,
  PROJECT_FILE,
  checkConfigText,
  findProjectFile,
  loadConfig,
  loadProject,
  parseConfig,
  projectCwd,
  selectMachine,
  selectMachines,
} from './load.js';
export { configJsonSchema, type JsonSchema } from './json-schema.js';
export { parseSize, formatSize } from './units.js';
export { didYouMean, editDistance } from './did-you-mean.js';
