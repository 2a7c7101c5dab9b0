/** The box store as `vmenv box list` shows it: each box with its size, disks, uploads and the machines using it. */
import { machinesUsing, readMachineIndex, type MachineIndexEntry } from '../project/machine-index.js';
import type { DiskFormat } from './format.js';
import type { StoreOptions } from './store-paths.js';
import { listBoxes, sizeOnDisk } from './stored-boxes.js';
import { readUploads, type BoxUpload } from './upload-records.js';
import { errorMessage } from '../util/format.js';

export interface BoxListEntry {
  name: string;
  version: string;
  provider: 'libvirt';
  /** Bytes on disk. */
  size: number;
  path: string;
  disks: { path: string; format: DiskFormat; virtual_size: number; size: number }[];
  uploads: BoxUpload[];
  /** Machines using it; null when the machine index cannot be read. */
  machines: { id: string; project: string; machine: string; state?: string }[] | null;
  added_at?: string;
  source?: string;
}

export interface BoxListing {
  boxes: BoxListEntry[];
  /** Why machines are unknown, when the index cannot be read. */
  warning?: string;
}


export async function describeStore(options: StoreOptions = {}): Promise<BoxListing> {
  const boxes = await listBoxes(options);
  let index: MachineIndexEntry[] | null;
  let warning: string | undefined;
  try {
    index = await readMachineIndex(options);
  } catch (err) {
    index = null;
    warning = errorMessage(err);
  }
  const entries: BoxListEntry[] = [];
  for (const b of boxes) {
    entries.push({
      name: b.name,
      version: b.version,
      provider: 'libvirt',
      size: await sizeOnDisk(b.dir),
      path: b.dir,
      disks: b.disks.map((d) => ({ path: d.path, format: d.format, virtual_size: d.virtualSize, size: d.size })),
      uploads: await readUploads(b.dir),
      machines:
        index === null
          ? null
          : machinesUsing(index, b.name, b.version).map((m) => ({ id: m.id, project: m.project, machine: m.machine, ...(m.state === undefined ? {} : { state: m.state }) })),
      ...(b.addedAt === undefined ? {} : { added_at: b.addedAt }),
      ...(b.source === undefined ? {} : { source: b.source }),
    });
  }
  return { boxes: entries, ...(warning === undefined ? {} : { warning }) };
}
