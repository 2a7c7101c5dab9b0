import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where vmenv's user data is (tests give a folder of their own). */
export interface HomeOptions {
  /** vmenv's data folder (default: vmenvHome()). */
  home?: string;
}

/** vmenv's user data folder: $VMENV_HOME, else $XDG_DATA_HOME/vmenv, else ~/.local/share/vmenv. */
export function vmenvHome(env: NodeJS.ProcessEnv = process.env): string {
  const own = env['VMENV_HOME'];
  if (own !== undefined && own !== '') return own;
  const xdg = env['XDG_DATA_HOME'];
  if (xdg !== undefined && xdg !== '' && xdg.startsWith('/')) return join(xdg, 'vmenv');
  return join(env['HOME'] !== undefined && env['HOME'] !== '' ? env['HOME'] : homedir(), '.local', 'share', 'vmenv');
}
