/** libvirt enum and flag values used by vmenv (from libvirt's public headers). */

export const DomainState = {
  noState: 0,
  running: 1,
  blocked: 2,
  paused: 3,
  shutdown: 4,
  shutoff: 5,
  crashed: 6,
  pmSuspended: 7,
} as const;
export type DomainState = (typeof DomainState)[keyof typeof DomainState];

export function domainStateName(s: number): string {
  const names = ['no state', 'running', 'blocked', 'paused', 'shutting down', 'shut off', 'crashed', 'suspended (PM)'];
  return names[s] ?? `state ${s}`;
}

export const DomainShutdownFlags = { default: 0, acpiPowerButton: 1, guestAgent: 2, initctl: 4, signal: 8, paravirt: 16 } as const;
export const DomainDestroyFlags = { default: 0, graceful: 1, removeLogs: 2 } as const;
export const DomainUndefineFlags = {
  managedSave: 1,
  snapshotsMetadata: 2,
  nvram: 4,
  keepNvram: 8,
  checkpointsMetadata: 16,
  tpm: 32,
  keepTpm: 64,
} as const;
export const DomainCreateFlags = { none: 0, startPaused: 1, autodestroy: 2, bypassCache: 4, forceBoot: 8, validate: 16, resetNvram: 32 } as const;
export const DomainDefineFlags = { validate: 1 } as const;
export const DomainXmlFlags = { secure: 1, inactive: 2, updateCpu: 4, migratable: 8 } as const;
export const DomainAffect = { current: 0, live: 1, config: 2 } as const;

export const DomainInterfaceAddressSource = { lease: 0, agent: 1, arp: 2 } as const;
export type DomainInterfaceAddressSource =
  (typeof DomainInterfaceAddressSource)[keyof typeof DomainInterfaceAddressSource];

export const IpAddrType = { ipv4: 0, ipv6: 1 } as const;

export const ListAllDomainsFlags = {
  active: 1,
  inactive: 2,
  persistent: 4,
  transient: 8,
  running: 16,
  paused: 32,
  shutoff: 64,
  other: 128,
} as const;

export const SnapshotCreateFlags = {
  redefine: 1,
  current: 2,
  noMetadata: 4,
  halt: 8,
  diskOnly: 16,
  reuseExt: 32,
  quiesce: 64,
  atomic: 128,
  live: 256,
  validate: 512,
} as const;
export const SnapshotDeleteFlags = { children: 1, metadataOnly: 2, childrenOnly: 4 } as const;
export const SnapshotRevertFlags = { running: 1, paused: 2, force: 4, resetNvram: 8 } as const;

export const StorageVolCreateFlags = { preallocMetadata: 1, reflink: 2, validate: 4 } as const;
export const StorageVolResizeFlags = { allocate: 1, delta: 2, shrink: 4 } as const;
export const StorageVolType = { file: 0, block: 1, dir: 2, network: 3, netdir: 4, ploop: 5 } as const;
export const StoragePoolState = { inactive: 0, building: 1, running: 2, degraded: 3, inaccessible: 4 } as const;
export const StoragePoolBuildFlags = { new: 0, repair: 1, resize: 2, noOverwrite: 4, overwrite: 8 } as const;

/** Lifecycle event types (virDomainEventType). */
export const DomainEventType = {
  defined: 0,
  undefined: 1,
  started: 2,
  suspended: 3,
  resumed: 4,
  stopped: 5,
  shutdown: 6,
  pmSuspended: 7,
  crashed: 8,
} as const;
export type DomainEventType = (typeof DomainEventType)[keyof typeof DomainEventType];

export const DomainEventId = { lifecycle: 0 } as const;

/** Features asked for with ConnectSupportsFeature (libvirt's internal VIR_DRV_FEATURE_*). */
export const DriverFeature = { programKeepalive: 10 } as const;

export const AuthType = { none: 0, sasl: 1, polkit: 2 } as const;
