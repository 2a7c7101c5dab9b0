import type { Readable } from 'node:stream';
import { AuthType, DomainEventId, DomainEventType, DriverFeature } from './constants.js';
import { LibvirtConnectError } from './errors.js';
import { Proc, callTable, messages, type ArgsOf, type CallName, type RetOf } from './protocol/procedures.js';
import type { DomainRef, NetworkRef, SnapshotRef, StoragePoolRef, StorageVolRef } from './protocol/types.js';
import type { XdrReader, XdrWriter } from './protocol/xdr.js';
import { RpcConnection, runUserCallback, type ArgsWriter, type KeepaliveOptions } from './rpc.js';
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

/** Encodes the arguments of `name` as its table entry lays them out. */
function argsWriter<K extends CallName>(name: K, args: ArgsOf<K>): ArgsWriter {
  const codec = callTable[name].args;
  return (w: XdrWriter) => codec.write(w, args);
}

/**
 * Calls `name` and decodes its reply through the table; `map` turns libvirt's return
 * struct into what the client returns, inside the decoder (before any later message
 * is dispatched).
 */
function invoke<K extends CallName>(rpc: RpcConnection, name: K, args: ArgsOf<K>): Promise<RetOf<K>>;
function invoke<K extends CallName, T>(rpc: RpcConnection, name: K, args: ArgsOf<K>, map: (ret: RetOf<K>) => T): Promise<T>;
function invoke<K extends CallName, T>(
  rpc: RpcConnection,
  name: K,
  args: ArgsOf<K>,
  map?: (ret: RetOf<K>) => T,
): Promise<T | RetOf<K>> {
  const { number, args: layout, ret } = callTable[name];
  const write = layout.shape.kind === 'void' ? undefined : (w: XdrWriter) => layout.write(w, args);
  const decode = ret.shape.kind === 'void' && map === undefined ? undefined : (r: XdrReader) => (map ? map(ret.read(r)) : ret.read(r));
  return rpc.call(number, write, decode);
}

const isTrue = (v: number): boolean => v !== 0;

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
      const { callbackId, msg } = messages.DomainEventCallbackLifecycle.msg.read(r);
      const listener = this.lifecycleListeners.get(callbackId);
      if (!listener) return;
      const event = { domain: msg.dom, event: msg.event as DomainEventType, detail: msg.detail };
      runUserCallback(() => listener(event));
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
    const { types } = await invoke(this.rpc, 'AuthList', undefined);
    if (types.length === 0 || types.includes(AuthType.none)) return;
    if (types.includes(AuthType.polkit)) {
      await invoke(this.rpc, 'AuthPolkit', undefined);
      return;
    }
    throw new LibvirtConnectError('the libvirt daemon requires SASL authentication, which vmenv does not support', this.uri);
  }

  connectOpen(name: string | null, flags = 0): Promise<void> {
    return invoke(this.rpc, 'ConnectOpen', { name, flags });
  }

  /** Closes the libvirt connection, then the transport. Safe to call twice. */
  async close(): Promise<void> {
    if (this.rpc.closed) return;
    this.rpc.prepareClose();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        invoke(this.rpc, 'ConnectClose', undefined),
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
    return invoke(this.rpc, 'ConnectSupportsFeature', { feature }, (r) => isTrue(r.supported));
  }

  /** Starts keepalive when the daemon supports it; returns whether it does. */
  async startKeepalive(opts: KeepaliveOptions = { intervalMs: 5000, count: 5 }): Promise<boolean> {
    const supported = await this.connectSupportsFeature(DriverFeature.programKeepalive);
    if (supported) this.rpc.enableKeepalive(opts);
    return supported;
  }

  connectGetType(): Promise<string> {
    return invoke(this.rpc, 'ConnectGetType', undefined, (r) => r.type);
  }
  /** The hypervisor's version: major * 1,000,000 + minor * 1,000 + release. */
  connectGetVersion(): Promise<bigint> {
    return invoke(this.rpc, 'ConnectGetVersion', undefined, (r) => r.hvVer);
  }
  /** libvirt's version: major * 1,000,000 + minor * 1,000 + release. */
  connectGetLibVersion(): Promise<bigint> {
    return invoke(this.rpc, 'ConnectGetLibVersion', undefined, (r) => r.libVer);
  }
  connectGetHostname(): Promise<string> {
    return invoke(this.rpc, 'ConnectGetHostname', undefined, (r) => r.hostname);
  }
  connectGetCapabilities(): Promise<string> {
    return invoke(this.rpc, 'ConnectGetCapabilities', undefined, (r) => r.capabilities);
  }
  connectGetUri(): Promise<string> {
    return invoke(this.rpc, 'ConnectGetUri', undefined, (r) => r.uri);
  }

  // --- domains ----------------------------------------------------------------

  domainDefineXml(xml: string, flags = 0): Promise<DomainRef> {
    return invoke(this.rpc, 'DomainDefineXMLFlags', { xml, flags }, (r) => r.dom);
  }
  domainCreate(d: DomainRef, flags = 0): Promise<DomainRef> {
    return invoke(this.rpc, 'DomainCreateWithFlags', { dom: d, flags }, (r) => r.dom);
  }
  domainLookupByName(name: string): Promise<DomainRef> {
    return invoke(this.rpc, 'DomainLookupByName', { name }, (r) => r.dom);
  }
  domainLookupByUuid(uuid: Buffer): Promise<DomainRef> {
    return invoke(this.rpc, 'DomainLookupByUUID', { uuid }, (r) => r.dom);
  }
  domainGetState(d: DomainRef): Promise<DomainStateInfo> {
    return invoke(this.rpc, 'DomainGetState', { dom: d, flags: 0 });
  }
  domainGetInfo(d: DomainRef): Promise<DomainInfo> {
    return invoke(this.rpc, 'DomainGetInfo', { dom: d }, (r) => ({
      state: r.state,
      maxMemKiB: r.maxMem,
      memoryKiB: r.memory,
      vcpus: r.nrVirtCpu,
      cpuTimeNs: r.cpuTime,
    }));
  }
  domainIsActive(d: DomainRef): Promise<boolean> {
    return invoke(this.rpc, 'DomainIsActive', { dom: d }, (r) => isTrue(r.active));
  }
  domainGetXmlDesc(d: DomainRef, flags = 0): Promise<string> {
    return invoke(this.rpc, 'DomainGetXMLDesc', { dom: d, flags }, (r) => r.xml);
  }
  domainShutdown(d: DomainRef, flags = 0): Promise<void> {
    return invoke(this.rpc, 'DomainShutdownFlags', { dom: d, flags });
  }
  domainReboot(d: DomainRef, flags = 0): Promise<void> {
    return invoke(this.rpc, 'DomainReboot', { dom: d, flags });
  }
  domainDestroy(d: DomainRef, flags = 0): Promise<void> {
    return invoke(this.rpc, 'DomainDestroyFlags', { dom: d, flags });
  }
  domainUndefine(d: DomainRef, flags = 0): Promise<void> {
    return invoke(this.rpc, 'DomainUndefineFlags', { dom: d, flags });
  }
  domainSuspend(d: DomainRef): Promise<void> {
    return invoke(this.rpc, 'DomainSuspend', { dom: d });
  }
  domainResume(d: DomainRef): Promise<void> {
    return invoke(this.rpc, 'DomainResume', { dom: d });
  }
  domainManagedSave(d: DomainRef, flags = 0): Promise<void> {
    return invoke(this.rpc, 'DomainManagedSave', { dom: d, flags });
  }
  domainHasManagedSaveImage(d: DomainRef): Promise<boolean> {
    return invoke(this.rpc, 'DomainHasManagedSaveImage', { dom: d, flags: 0 }, (r) => isTrue(r.result));
  }
  domainManagedSaveRemove(d: DomainRef): Promise<void> {
    return invoke(this.rpc, 'DomainManagedSaveRemove', { dom: d, flags: 0 });
  }
  domainSetAutostart(d: DomainRef, autostart: boolean): Promise<void> {
    return invoke(this.rpc, 'DomainSetAutostart', { dom: d, autostart: autostart ? 1 : 0 });
  }
  domainGetAutostart(d: DomainRef): Promise<boolean> {
    return invoke(this.rpc, 'DomainGetAutostart', { dom: d }, (r) => isTrue(r.autostart));
  }
  domainSetVcpus(d: DomainRef, vcpus: number, flags: number): Promise<void> {
    return invoke(this.rpc, 'DomainSetVcpusFlags', { dom: d, nvcpus: vcpus, flags });
  }
  domainSetMemory(d: DomainRef, memoryKiB: bigint, flags: number): Promise<void> {
    return invoke(this.rpc, 'DomainSetMemoryFlags', { dom: d, memory: memoryKiB, flags });
  }
  domainAttachDevice(d: DomainRef, xml: string, flags: number): Promise<void> {
    return invoke(this.rpc, 'DomainAttachDeviceFlags', { dom: d, xml, flags });
  }
  domainDetachDevice(d: DomainRef, xml: string, flags: number): Promise<void> {
    return invoke(this.rpc, 'DomainDetachDeviceFlags', { dom: d, xml, flags });
  }
  connectListAllDomains(flags = 0): Promise<DomainRef[]> {
    return invoke(this.rpc, 'ConnectListAllDomains', { needResults: 1, flags }, (r) => r.domains);
  }
  /** Addresses of the domain's interfaces, from DHCP leases, the guest agent or ARP. */
  domainInterfaceAddresses(d: DomainRef, source: number): Promise<DomainInterfaceInfo[]> {
    return invoke(this.rpc, 'DomainInterfaceAddresses', { dom: d, source, flags: 0 }, (r) =>
      r.ifaces.map((i) => ({ name: i.name, mac: i.hwaddr, addrs: i.addrs })),
    );
  }

  // --- snapshots --------------------------------------------------------------

  domainSnapshotCreateXml(d: DomainRef, xml: string, flags = 0): Promise<SnapshotRef> {
    return invoke(this.rpc, 'DomainSnapshotCreateXML', { dom: d, xmlDesc: xml, flags }, (r) => r.snap);
  }
  domainListAllSnapshots(d: DomainRef, flags = 0): Promise<SnapshotRef[]> {
    return invoke(this.rpc, 'DomainListAllSnapshots', { dom: d, needResults: 1, flags }, (r) => r.snapshots);
  }
  domainSnapshotLookupByName(d: DomainRef, name: string): Promise<SnapshotRef> {
    return invoke(this.rpc, 'DomainSnapshotLookupByName', { dom: d, name, flags: 0 }, (r) => r.snap);
  }
  domainSnapshotGetXmlDesc(s: SnapshotRef, flags = 0): Promise<string> {
    return invoke(this.rpc, 'DomainSnapshotGetXMLDesc', { snap: s, flags }, (r) => r.xml);
  }
  domainRevertToSnapshot(s: SnapshotRef, flags = 0): Promise<void> {
    return invoke(this.rpc, 'DomainRevertToSnapshot', { snap: s, flags });
  }
  domainSnapshotDelete(s: SnapshotRef, flags = 0): Promise<void> {
    return invoke(this.rpc, 'DomainSnapshotDelete', { snap: s, flags });
  }

  // --- events -----------------------------------------------------------------

  /**
   * Receive lifecycle events of one domain (or of all, with null) until the returned
   * function is called.
   */
  async onDomainLifecycle(domain: DomainRef | null, listener: (e: DomainLifecycleEvent) => void): Promise<Unsubscribe> {
    // The listener is attached in the reply decoder, before any event can be dispatched.
    const callbackId = await invoke(
      this.rpc,
      'ConnectDomainEventCallbackRegisterAny',
      { eventId: DomainEventId.lifecycle, dom: domain },
      (r) => {
        this.lifecycleListeners.set(r.callbackId, listener);
        return r.callbackId;
      },
    );
    return async () => {
      if (!this.lifecycleListeners.delete(callbackId) || this.rpc.closed) return;
      await invoke(this.rpc, 'ConnectDomainEventCallbackDeregisterAny', { callbackId });
    };
  }

  // --- storage pools ----------------------------------------------------------

  storagePoolLookupByName(name: string): Promise<StoragePoolRef> {
    return invoke(this.rpc, 'StoragePoolLookupByName', { name }, (r) => r.pool);
  }
  storagePoolDefineXml(xml: string, flags = 0): Promise<StoragePoolRef> {
    return invoke(this.rpc, 'StoragePoolDefineXML', { xml, flags }, (r) => r.pool);
  }
  storagePoolBuild(p: StoragePoolRef, flags = 0): Promise<void> {
    return invoke(this.rpc, 'StoragePoolBuild', { pool: p, flags });
  }
  storagePoolCreate(p: StoragePoolRef, flags = 0): Promise<void> {
    return invoke(this.rpc, 'StoragePoolCreate', { pool: p, flags });
  }
  storagePoolDestroy(p: StoragePoolRef): Promise<void> {
    return invoke(this.rpc, 'StoragePoolDestroy', { pool: p });
  }
  storagePoolUndefine(p: StoragePoolRef): Promise<void> {
    return invoke(this.rpc, 'StoragePoolUndefine', { pool: p });
  }
  storagePoolRefresh(p: StoragePoolRef): Promise<void> {
    return invoke(this.rpc, 'StoragePoolRefresh', { pool: p, flags: 0 });
  }
  storagePoolIsActive(p: StoragePoolRef): Promise<boolean> {
    return invoke(this.rpc, 'StoragePoolIsActive', { pool: p }, (r) => isTrue(r.active));
  }
  storagePoolSetAutostart(p: StoragePoolRef, autostart: boolean): Promise<void> {
    return invoke(this.rpc, 'StoragePoolSetAutostart', { pool: p, autostart: autostart ? 1 : 0 });
  }
  storagePoolGetInfo(p: StoragePoolRef): Promise<StoragePoolInfo> {
    return invoke(this.rpc, 'StoragePoolGetInfo', { pool: p });
  }
  storagePoolGetXmlDesc(p: StoragePoolRef, flags = 0): Promise<string> {
    return invoke(this.rpc, 'StoragePoolGetXMLDesc', { pool: p, flags }, (r) => r.xml);
  }
  storagePoolListAllVolumes(p: StoragePoolRef): Promise<StorageVolRef[]> {
    return invoke(this.rpc, 'StoragePoolListAllVolumes', { pool: p, needResults: 1, flags: 0 }, (r) => r.vols);
  }
  connectListAllStoragePools(flags = 0): Promise<StoragePoolRef[]> {
    return invoke(this.rpc, 'ConnectListAllStoragePools', { needResults: 1, flags }, (r) => r.pools);
  }

  // --- storage volumes --------------------------------------------------------

  storageVolCreateXml(p: StoragePoolRef, xml: string, flags = 0): Promise<StorageVolRef> {
    return invoke(this.rpc, 'StorageVolCreateXML', { pool: p, xml, flags }, (r) => r.vol);
  }
  storageVolCreateXmlFrom(p: StoragePoolRef, xml: string, clone: StorageVolRef, flags = 0): Promise<StorageVolRef> {
    return invoke(this.rpc, 'StorageVolCreateXMLFrom', { pool: p, xml, clonevol: clone, flags }, (r) => r.vol);
  }
  storageVolLookupByName(p: StoragePoolRef, name: string): Promise<StorageVolRef> {
    return invoke(this.rpc, 'StorageVolLookupByName', { pool: p, name }, (r) => r.vol);
  }
  storageVolLookupByPath(path: string): Promise<StorageVolRef> {
    return invoke(this.rpc, 'StorageVolLookupByPath', { path }, (r) => r.vol);
  }
  storageVolGetInfo(v: StorageVolRef): Promise<StorageVolInfo> {
    return invoke(this.rpc, 'StorageVolGetInfo', { vol: v });
  }
  storageVolGetPath(v: StorageVolRef): Promise<string> {
    return invoke(this.rpc, 'StorageVolGetPath', { vol: v }, (r) => r.name);
  }
  storageVolGetXmlDesc(v: StorageVolRef): Promise<string> {
    return invoke(this.rpc, 'StorageVolGetXMLDesc', { vol: v, flags: 0 }, (r) => r.xml);
  }
  storageVolDelete(v: StorageVolRef, flags = 0): Promise<void> {
    return invoke(this.rpc, 'StorageVolDelete', { vol: v, flags });
  }
  storageVolResize(v: StorageVolRef, capacity: bigint, flags = 0): Promise<void> {
    return invoke(this.rpc, 'StorageVolResize', { vol: v, capacity, flags });
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
    const args = argsWriter('StorageVolUpload', { vol: v, offset: options.offset ?? 0n, length: options.length ?? 0n, flags: 0 });
    return uploadStream(this.rpc, Proc.StorageVolUpload, args, source, options);
  }
  /** Uploads a file as it is (a qcow2 file stays qcow2), at the speed of the disk. */
  storageVolUploadFile(v: StorageVolRef, path: string, options: TransferOptions = {}): Promise<number> {
    return this.storageVolUpload(v, readFileChunks(path, options.chunkSize), options);
  }
  storageVolDownload(
    v: StorageVolRef,
    options: TransferOptions & { offset?: bigint; length?: bigint } = {},
  ): Promise<Readable> {
    const args = argsWriter('StorageVolDownload', { vol: v, offset: options.offset ?? 0n, length: options.length ?? 0n, flags: 0 });
    return downloadStream(this.rpc, Proc.StorageVolDownload, args, options);
  }

  // --- networks ---------------------------------------------------------------

  networkLookupByName(name: string): Promise<NetworkRef> {
    return invoke(this.rpc, 'NetworkLookupByName', { name }, (r) => r.net);
  }
  networkDefineXml(xml: string): Promise<NetworkRef> {
    return invoke(this.rpc, 'NetworkDefineXML', { xml }, (r) => r.net);
  }
  networkCreate(n: NetworkRef): Promise<void> {
    return invoke(this.rpc, 'NetworkCreate', { net: n });
  }
  networkDestroy(n: NetworkRef): Promise<void> {
    return invoke(this.rpc, 'NetworkDestroy', { net: n });
  }
  networkUndefine(n: NetworkRef): Promise<void> {
    return invoke(this.rpc, 'NetworkUndefine', { net: n });
  }
  networkIsActive(n: NetworkRef): Promise<boolean> {
    return invoke(this.rpc, 'NetworkIsActive', { net: n }, (r) => isTrue(r.active));
  }
  networkSetAutostart(n: NetworkRef, autostart: boolean): Promise<void> {
    return invoke(this.rpc, 'NetworkSetAutostart', { net: n, autostart: autostart ? 1 : 0 });
  }
  networkGetXmlDesc(n: NetworkRef, flags = 0): Promise<string> {
    return invoke(this.rpc, 'NetworkGetXMLDesc', { net: n, flags }, (r) => r.xml);
  }
  networkGetBridgeName(n: NetworkRef): Promise<string> {
    return invoke(this.rpc, 'NetworkGetBridgeName', { net: n }, (r) => r.name);
  }
  connectListAllNetworks(flags = 0): Promise<NetworkRef[]> {
    return invoke(this.rpc, 'ConnectListAllNetworks', { needResults: 1, flags }, (r) => r.nets);
  }
  /** The network's DHCP leases, optionally only those of one MAC address. */
  networkGetDhcpLeases(n: NetworkRef, mac?: string): Promise<DhcpLease[]> {
    return invoke(this.rpc, 'NetworkGetDhcpLeases', { net: n, mac: mac ?? null, needResults: 1, flags: 0 }, (r) => r.leases);
  }
}
