import type { Readable } from 'node:stream';
import { AuthType, DomainEventId, DomainEventType, DriverFeature } from './constants.js';
import { LibvirtConnectError } from './errors.js';
import { Proc } from './protocol/procedures.js';
import {
  readDomain,
  readNetwork,
  readPool,
  readSnapshot,
  readVolume,
  writeDomain,
  writeNetwork,
  writePool,
  writeSnapshot,
  writeVolume,
  type DomainRef,
  type NetworkRef,
  type SnapshotRef,
  type StoragePoolRef,
  type StorageVolRef,
} from './protocol/types.js';
import type { XdrReader, XdrWriter } from './protocol/xdr.js';
import { RpcConnection, runUserCallback, type KeepaliveOptions } from './rpc.js';
import { downloadStream, readFileChunks, uploadStream, type TransferOptions, type UploadChunk } from './stream.js';

export interface DomainStateInfo {
  state: number;
  reason: number;
}

export interface DomainInfo {
  state: number;
  maxMemKiB: bigint;
  memoryKiB: bigint;
  vcpus: number;
  cpuTimeNs: bigint;
}

export interface DomainInterfaceInfo {
  name: string;
  mac: string | null;
  addrs: { type: number; addr: string; prefix: number }[];
}

export interface DhcpLease {
  iface: string;
  /** Seconds since the epoch. */
  expiryTime: bigint;
  type: number;
  mac: string | null;
  iaid: string | null;
  ipaddr: string;
  prefix: number;
  hostname: string | null;
  clientId: string | null;
}

export interface StorageVolInfo {
  type: number;
  capacity: bigint;
  allocation: bigint;
}

export interface StoragePoolInfo {
  state: number;
  capacity: bigint;
  allocation: bigint;
  available: bigint;
}

export interface DomainLifecycleEvent {
  domain: DomainRef;
  event: DomainEventType;
  detail: number;
}

export type Unsubscribe = () => Promise<void>;

/** How long close() waits for the daemon to acknowledge before dropping the transport. */
const CLOSE_TIMEOUT_MS = 5000;

const nameArg = (name: string) => (w: XdrWriter) => w.string(name);
const domArg = (d: DomainRef) => (w: XdrWriter) => writeDomain(w, d);
const domFlagsArg = (d: DomainRef, flags: number) => (w: XdrWriter) => {
  writeDomain(w, d);
  w.uint(flags);
};
const netArg = (n: NetworkRef) => (w: XdrWriter) => writeNetwork(w, n);
const poolArg = (p: StoragePoolRef) => (w: XdrWriter) => writePool(w, p);
const poolFlagsArg = (p: StoragePoolRef, flags: number) => (w: XdrWriter) => {
  writePool(w, p);
  w.uint(flags);
};
const volArg = (v: StorageVolRef) => (w: XdrWriter) => writeVolume(w, v);
const xmlFlagsArg = (xml: string, flags: number) => (w: XdrWriter) => w.string(xml).uint(flags);
const str = (r: XdrReader) => r.string();
const int = (r: XdrReader) => r.int();
const bool = (r: XdrReader) => r.int() !== 0;
const uhyper = (r: XdrReader) => r.uhyper();
/** The *_list_all calls return the objects and then a count we have no use for. */
const listOf =
  <T>(read: (r: XdrReader) => T) =>
  (r: XdrReader): T[] => {
    const items = r.array(read);
    r.uint();
    return items;
  };

/**
 * A connection to one libvirt daemon with the calls vmenv needs, named after the
 * remote procedures they make. Objects are passed as the small handles libvirt
 * returns (DomainRef, NetworkRef, StoragePoolRef, StorageVolRef).
 */
export class LibvirtClient {
  private readonly lifecycleListeners = new Map<number, (e: DomainLifecycleEvent) => void>();

  /** `uri` names the daemon in messages; the client works without it. */
  constructor(
    readonly rpc: RpcConnection,
    readonly uri = 'libvirt',
  ) {
    rpc.setMessageHandler((procedure, r) => {
      if (procedure !== Proc.DomainEventCallbackLifecycle) return;
      const callbackId = r.int();
      const domain = readDomain(r);
      const event = r.int() as DomainEventType;
      const detail = r.int();
      const listener = this.lifecycleListeners.get(callbackId);
      if (listener) runUserCallback(() => listener({ domain, event, detail }));
    });
  }

  get closed(): boolean {
    return this.rpc.closed;
  }

  onClose(listener: (err: Error | undefined) => void): () => void {
    return this.rpc.onClose(listener);
  }

  // --- connection -------------------------------------------------------------

  /** Authenticates when the daemon asks for it: none and polkit are supported. */
  async authenticate(): Promise<void> {
    const types = await this.rpc.call(Proc.AuthList, undefined, (r) => r.array((x) => x.int()));
    if (types.length === 0 || types.includes(AuthType.none)) return;
    if (types.includes(AuthType.polkit)) {
      await this.rpc.call(Proc.AuthPolkit, undefined, int);
      return;
    }
    throw new LibvirtConnectError('the libvirt daemon requires SASL authentication, which vmenv does not support', this.uri);
  }

  connectOpen(name: string | null, flags = 0): Promise<void> {
    return this.rpc.call(Proc.ConnectOpen, (w) => w.optionalString(name).uint(flags));
  }

  /** Closes the libvirt connection, then the transport. Safe to call twice. */
  async close(): Promise<void> {
    if (this.rpc.closed) return;
    this.rpc.prepareClose();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.rpc.call(Proc.ConnectClose),
        new Promise((resolve) => {
          timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
        }),
      ]);
    } catch {
      // The daemon may already be gone; closing the transport is all that is left.
    } finally {
      clearTimeout(timer);
    }
    await this.rpc.end();
  }

  async connectSupportsFeature(feature: number): Promise<boolean> {
    return this.rpc.call(Proc.ConnectSupportsFeature, (w) => w.int(feature), bool);
  }

  /** Starts keepalive when the daemon supports it; returns whether it does. */
  async startKeepalive(opts: KeepaliveOptions = { intervalMs: 5000, count: 5 }): Promise<boolean> {
    const supported = await this.connectSupportsFeature(DriverFeature.programKeepalive);
    if (supported) this.rpc.enableKeepalive(opts);
    return supported;
  }

  connectGetType(): Promise<string> {
    return this.rpc.call(Proc.ConnectGetType, undefined, str);
  }
  /** The hypervisor's version: major * 1,000,000 + minor * 1,000 + release. */
  connectGetVersion(): Promise<bigint> {
    return this.rpc.call(Proc.ConnectGetVersion, undefined, uhyper);
  }
  /** libvirt's version: major * 1,000,000 + minor * 1,000 + release. */
  connectGetLibVersion(): Promise<bigint> {
    return this.rpc.call(Proc.ConnectGetLibVersion, undefined, uhyper);
  }
  connectGetHostname(): Promise<string> {
    return this.rpc.call(Proc.ConnectGetHostname, undefined, str);
  }
  connectGetCapabilities(): Promise<string> {
    return this.rpc.call(Proc.ConnectGetCapabilities, undefined, str);
  }
  connectGetUri(): Promise<string> {
    return this.rpc.call(Proc.ConnectGetUri, undefined, str);
  }

  // --- domains ----------------------------------------------------------------

  domainDefineXml(xml: string, flags = 0): Promise<DomainRef> {
    return this.rpc.call(Proc.DomainDefineXMLFlags, xmlFlagsArg(xml, flags), readDomain);
  }
  domainCreate(d: DomainRef, flags = 0): Promise<DomainRef> {
    return this.rpc.call(Proc.DomainCreateWithFlags, domFlagsArg(d, flags), readDomain);
  }
  domainLookupByName(name: string): Promise<DomainRef> {
    return this.rpc.call(Proc.DomainLookupByName, nameArg(name), readDomain);
  }
  domainLookupByUuid(uuid: Buffer): Promise<DomainRef> {
    return this.rpc.call(Proc.DomainLookupByUUID, (w) => w.fixedOpaque(uuid, 16), readDomain);
  }
  domainGetState(d: DomainRef): Promise<DomainStateInfo> {
    return this.rpc.call(Proc.DomainGetState, domFlagsArg(d, 0), (r) => ({ state: r.int(), reason: r.int() }));
  }
  domainGetInfo(d: DomainRef): Promise<DomainInfo> {
    return this.rpc.call(Proc.DomainGetInfo, domArg(d), (r) => ({
      state: r.int(),
      maxMemKiB: r.uhyper(),
      memoryKiB: r.uhyper(),
      vcpus: r.int(),
      cpuTimeNs: r.uhyper(),
    }));
  }
  domainIsActive(d: DomainRef): Promise<boolean> {
    return this.rpc.call(Proc.DomainIsActive, domArg(d), bool);
  }
  domainGetXmlDesc(d: DomainRef, flags = 0): Promise<string> {
    return this.rpc.call(Proc.DomainGetXMLDesc, domFlagsArg(d, flags), str);
  }
  domainShutdown(d: DomainRef, flags = 0): Promise<void> {
    return this.rpc.call(Proc.DomainShutdownFlags, domFlagsArg(d, flags));
  }
  domainReboot(d: DomainRef, flags = 0): Promise<void> {
    return this.rpc.call(Proc.DomainReboot, domFlagsArg(d, flags));
  }
  domainDestroy(d: DomainRef, flags = 0): Promise<void> {
    return this.rpc.call(Proc.DomainDestroyFlags, domFlagsArg(d, flags));
  }
  domainUndefine(d: DomainRef, flags = 0): Promise<void> {
    return this.rpc.call(Proc.DomainUndefineFlags, domFlagsArg(d, flags));
  }
  domainSuspend(d: DomainRef): Promise<void> {
    return this.rpc.call(Proc.DomainSuspend, domArg(d));
  }
  domainResume(d: DomainRef): Promise<void> {
    return this.rpc.call(Proc.DomainResume, domArg(d));
  }
  domainManagedSave(d: DomainRef, flags = 0): Promise<void> {
    return this.rpc.call(Proc.DomainManagedSave, domFlagsArg(d, flags));
  }
  domainHasManagedSaveImage(d: DomainRef): Promise<boolean> {
    return this.rpc.call(Proc.DomainHasManagedSaveImage, domFlagsArg(d, 0), bool);
  }
  domainManagedSaveRemove(d: DomainRef): Promise<void> {
    return this.rpc.call(Proc.DomainManagedSaveRemove, domFlagsArg(d, 0));
  }
  domainSetAutostart(d: DomainRef, autostart: boolean): Promise<void> {
    return this.rpc.call(Proc.DomainSetAutostart, (w) => {
      writeDomain(w, d);
      w.int(autostart ? 1 : 0);
    });
  }
  domainGetAutostart(d: DomainRef): Promise<boolean> {
    return this.rpc.call(Proc.DomainGetAutostart, domArg(d), bool);
  }
  domainSetVcpus(d: DomainRef, vcpus: number, flags: number): Promise<void> {
    return this.rpc.call(Proc.DomainSetVcpusFlags, (w) => {
      writeDomain(w, d);
      w.uint(vcpus).uint(flags);
    });
  }
  domainSetMemory(d: DomainRef, memoryKiB: bigint, flags: number): Promise<void> {
    return this.rpc.call(Proc.DomainSetMemoryFlags, (w) => {
      writeDomain(w, d);
      w.uhyper(memoryKiB).uint(flags);
    });
  }
  domainAttachDevice(d: DomainRef, xml: string, flags: number): Promise<void> {
    return this.rpc.call(Proc.DomainAttachDeviceFlags, (w) => {
      writeDomain(w, d);
      w.string(xml).uint(flags);
    });
  }
  domainDetachDevice(d: DomainRef, xml: string, flags: number): Promise<void> {
    return this.rpc.call(Proc.DomainDetachDeviceFlags, (w) => {
      writeDomain(w, d);
      w.string(xml).uint(flags);
    });
  }
  connectListAllDomains(flags = 0): Promise<DomainRef[]> {
    return this.rpc.call(Proc.ConnectListAllDomains, (w) => w.int(1).uint(flags), listOf(readDomain));
  }
  /** Addresses of the domain's interfaces, from DHCP leases, the guest agent or ARP. */
  domainInterfaceAddresses(d: DomainRef, source: number): Promise<DomainInterfaceInfo[]> {
    return this.rpc.call(
      Proc.DomainInterfaceAddresses,
      (w) => {
        writeDomain(w, d);
        w.uint(source).uint(0);
      },
      (r) =>
        r.array((x) => ({
          name: x.string(),
          mac: x.optionalString(),
          addrs: x.array((a) => ({ type: a.int(), addr: a.string(), prefix: a.uint() })),
        })),
    );
  }

  // --- snapshots --------------------------------------------------------------

  domainSnapshotCreateXml(d: DomainRef, xml: string, flags = 0): Promise<SnapshotRef> {
    return this.rpc.call(
      Proc.DomainSnapshotCreateXML,
      (w) => {
        writeDomain(w, d);
        w.string(xml).uint(flags);
      },
      readSnapshot,
    );
  }
  domainListAllSnapshots(d: DomainRef, flags = 0): Promise<SnapshotRef[]> {
    return this.rpc.call(
      Proc.DomainListAllSnapshots,
      (w) => {
        writeDomain(w, d);
        w.int(1).uint(flags);
      },
      listOf(readSnapshot),
    );
  }
  domainSnapshotLookupByName(d: DomainRef, name: string): Promise<SnapshotRef> {
    return this.rpc.call(
      Proc.DomainSnapshotLookupByName,
      (w) => {
        writeDomain(w, d);
        w.string(name).uint(0);
      },
      readSnapshot,
    );
  }
  domainSnapshotGetXmlDesc(s: SnapshotRef, flags = 0): Promise<string> {
    return this.rpc.call(Proc.DomainSnapshotGetXMLDesc, (w) => {
      writeSnapshot(w, s);
      w.uint(flags);
    }, str);
  }
  domainRevertToSnapshot(s: SnapshotRef, flags = 0): Promise<void> {
    return this.rpc.call(Proc.DomainRevertToSnapshot, (w) => {
      writeSnapshot(w, s);
      w.uint(flags);
    });
  }
  domainSnapshotDelete(s: SnapshotRef, flags = 0): Promise<void> {
    return this.rpc.call(Proc.DomainSnapshotDelete, (w) => {
      writeSnapshot(w, s);
      w.uint(flags);
    });
  }

  // --- events -----------------------------------------------------------------

  /**
   * Receive lifecycle events of one domain (or of all, with null) until the returned
   * function is called.
   */
  async onDomainLifecycle(domain: DomainRef | null, listener: (e: DomainLifecycleEvent) => void): Promise<Unsubscribe> {
    // The listener is attached in the reply decoder, before any event can be dispatched.
    const callbackId = await this.rpc.call(
      Proc.ConnectDomainEventCallbackRegisterAny,
      (w) => {
        w.int(DomainEventId.lifecycle);
        w.optional(domain, writeDomain);
      },
      (r) => {
        const id = r.int();
        this.lifecycleListeners.set(id, listener);
        return id;
      },
    );
    return async () => {
      if (!this.lifecycleListeners.delete(callbackId) || this.rpc.closed) return;
      await this.rpc.call(Proc.ConnectDomainEventCallbackDeregisterAny, (w) => w.int(callbackId));
    };
  }

  // --- storage pools ----------------------------------------------------------

  storagePoolLookupByName(name: string): Promise<StoragePoolRef> {
    return this.rpc.call(Proc.StoragePoolLookupByName, nameArg(name), readPool);
  }
  storagePoolDefineXml(xml: string, flags = 0): Promise<StoragePoolRef> {
    return this.rpc.call(Proc.StoragePoolDefineXML, xmlFlagsArg(xml, flags), readPool);
  }
  storagePoolBuild(p: StoragePoolRef, flags = 0): Promise<void> {
    return this.rpc.call(Proc.StoragePoolBuild, poolFlagsArg(p, flags));
  }
  storagePoolCreate(p: StoragePoolRef, flags = 0): Promise<void> {
    return this.rpc.call(Proc.StoragePoolCreate, poolFlagsArg(p, flags));
  }
  storagePoolDestroy(p: StoragePoolRef): Promise<void> {
    return this.rpc.call(Proc.StoragePoolDestroy, poolArg(p));
  }
  storagePoolUndefine(p: StoragePoolRef): Promise<void> {
    return this.rpc.call(Proc.StoragePoolUndefine, poolArg(p));
  }
  storagePoolRefresh(p: StoragePoolRef): Promise<void> {
    return this.rpc.call(Proc.StoragePoolRefresh, poolFlagsArg(p, 0));
  }
  storagePoolIsActive(p: StoragePoolRef): Promise<boolean> {
    return this.rpc.call(Proc.StoragePoolIsActive, poolArg(p), bool);
  }
  storagePoolSetAutostart(p: StoragePoolRef, autostart: boolean): Promise<void> {
    return this.rpc.call(Proc.StoragePoolSetAutostart, (w) => {
      writePool(w, p);
      w.int(autostart ? 1 : 0);
    });
  }
  storagePoolGetInfo(p: StoragePoolRef): Promise<StoragePoolInfo> {
    return this.rpc.call(Proc.StoragePoolGetInfo, poolArg(p), (r) => ({
      state: r.int(),
      capacity: r.uhyper(),
      allocation: r.uhyper(),
      available: r.uhyper(),
    }));
  }
  storagePoolGetXmlDesc(p: StoragePoolRef, flags = 0): Promise<string> {
    return this.rpc.call(Proc.StoragePoolGetXMLDesc, poolFlagsArg(p, flags), str);
  }
  storagePoolListAllVolumes(p: StoragePoolRef): Promise<StorageVolRef[]> {
    return this.rpc.call(Proc.StoragePoolListAllVolumes, (w) => {
      writePool(w, p);
      w.int(1).uint(0);
    }, listOf(readVolume));
  }
  connectListAllStoragePools(flags = 0): Promise<StoragePoolRef[]> {
    return this.rpc.call(Proc.ConnectListAllStoragePools, (w) => w.int(1).uint(flags), listOf(readPool));
  }

  // --- storage volumes --------------------------------------------------------

  storageVolCreateXml(p: StoragePoolRef, xml: string, flags = 0): Promise<StorageVolRef> {
    return this.rpc.call(Proc.StorageVolCreateXML, (w) => {
      writePool(w, p);
      w.string(xml).uint(flags);
    }, readVolume);
  }
  storageVolCreateXmlFrom(p: StoragePoolRef, xml: string, clone: StorageVolRef, flags = 0): Promise<StorageVolRef> {
    return this.rpc.call(Proc.StorageVolCreateXMLFrom, (w) => {
      writePool(w, p);
      w.string(xml);
      writeVolume(w, clone);
      w.uint(flags);
    }, readVolume);
  }
  storageVolLookupByName(p: StoragePoolRef, name: string): Promise<StorageVolRef> {
    return this.rpc.call(Proc.StorageVolLookupByName, (w) => {
      writePool(w, p);
      w.string(name);
    }, readVolume);
  }
  storageVolLookupByPath(path: string): Promise<StorageVolRef> {
    return this.rpc.call(Proc.StorageVolLookupByPath, nameArg(path), readVolume);
  }
  storageVolGetInfo(v: StorageVolRef): Promise<StorageVolInfo> {
    return this.rpc.call(Proc.StorageVolGetInfo, volArg(v), (r) => ({
      type: r.int(),
      capacity: r.uhyper(),
      allocation: r.uhyper(),
    }));
  }
  storageVolGetPath(v: StorageVolRef): Promise<string> {
    return this.rpc.call(Proc.StorageVolGetPath, volArg(v), str);
  }
  storageVolGetXmlDesc(v: StorageVolRef): Promise<string> {
    return this.rpc.call(Proc.StorageVolGetXMLDesc, (w) => {
      writeVolume(w, v);
      w.uint(0);
    }, str);
  }
  storageVolDelete(v: StorageVolRef, flags = 0): Promise<void> {
    return this.rpc.call(Proc.StorageVolDelete, (w) => {
      writeVolume(w, v);
      w.uint(flags);
    });
  }
  storageVolResize(v: StorageVolRef, capacity: bigint, flags = 0): Promise<void> {
    return this.rpc.call(Proc.StorageVolResize, (w) => {
      writeVolume(w, v);
      w.uhyper(capacity).uint(flags);
    });
  }
  /**
   * Writes `source` into the volume from `offset` (length 0 = to the end of the data).
   * The bytes are written as they are: a qcow2 file stays a qcow2 file.
   */
  storageVolUpload(
    v: StorageVolRef,
    source: AsyncIterable<UploadChunk>,
    options: TransferOptions & { offset?: bigint; length?: bigint } = {},
  ): Promise<number> {
    return uploadStream(
      this.rpc,
      Proc.StorageVolUpload,
      (w) => {
        writeVolume(w, v);
        w.uhyper(options.offset ?? 0n).uhyper(options.length ?? 0n).uint(0);
      },
      source,
      options,
    );
  }
  /** Uploads a file as it is (a qcow2 file stays qcow2), at the speed of the disk. */
  storageVolUploadFile(v: StorageVolRef, path: string, options: TransferOptions = {}): Promise<number> {
    return this.storageVolUpload(v, readFileChunks(path, options.chunkSize), options);
  }
  storageVolDownload(
    v: StorageVolRef,
    options: TransferOptions & { offset?: bigint; length?: bigint } = {},
  ): Promise<Readable> {
    return downloadStream(
      this.rpc,
      Proc.StorageVolDownload,
      (w) => {
        writeVolume(w, v);
        w.uhyper(options.offset ?? 0n).uhyper(options.length ?? 0n).uint(0);
      },
      options,
    );
  }

  // --- networks ---------------------------------------------------------------

  networkLookupByName(name: string): Promise<NetworkRef> {
    return this.rpc.call(Proc.NetworkLookupByName, nameArg(name), readNetwork);
  }
  networkDefineXml(xml: string): Promise<NetworkRef> {
    return this.rpc.call(Proc.NetworkDefineXML, nameArg(xml), readNetwork);
  }
  networkCreate(n: NetworkRef): Promise<void> {
    return this.rpc.call(Proc.NetworkCreate, netArg(n));
  }
  networkDestroy(n: NetworkRef): Promise<void> {
    return this.rpc.call(Proc.NetworkDestroy, netArg(n));
  }
  networkUndefine(n: NetworkRef): Promise<void> {
    return this.rpc.call(Proc.NetworkUndefine, netArg(n));
  }
  networkIsActive(n: NetworkRef): Promise<boolean> {
    return this.rpc.call(Proc.NetworkIsActive, netArg(n), bool);
  }
  networkSetAutostart(n: NetworkRef, autostart: boolean): Promise<void> {
    return this.rpc.call(Proc.NetworkSetAutostart, (w) => {
      writeNetwork(w, n);
      w.int(autostart ? 1 : 0);
    });
  }
  networkGetXmlDesc(n: NetworkRef, flags = 0): Promise<string> {
    return this.rpc.call(Proc.NetworkGetXMLDesc, (w) => {
      writeNetwork(w, n);
      w.uint(flags);
    }, str);
  }
  networkGetBridgeName(n: NetworkRef): Promise<string> {
    return this.rpc.call(Proc.NetworkGetBridgeName, netArg(n), str);
  }
  connectListAllNetworks(flags = 0): Promise<NetworkRef[]> {
    return this.rpc.call(Proc.ConnectListAllNetworks, (w) => w.int(1).uint(flags), listOf(readNetwork));
  }
  /** The network's DHCP leases, optionally only those of one MAC address. */
  networkGetDhcpLeases(n: NetworkRef, mac?: string): Promise<DhcpLease[]> {
    return this.rpc.call(
      Proc.NetworkGetDhcpLeases,
      (w) => {
        writeNetwork(w, n);
        w.optionalString(mac ?? null).int(1).uint(0);
      },
      (r) => {
        const leases = r.array((x) => ({
          iface: x.string(),
          expiryTime: x.hyper(),
          type: x.int(),
          mac: x.optionalString(),
          iaid: x.optionalString(),
          ipaddr: x.string(),
          prefix: x.uint(),
          hostname: x.optionalString(),
          clientId: x.optionalString(),
        }));
        r.uint();
        return leases;
      },
    );
  }
}
