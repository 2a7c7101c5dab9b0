/**
 * The procedures of libvirt's remote program (remote_protocol.x) that vmenv uses: one
 * line each, with the number and the members of remote_<name>_args / _ret (or _msg)
 * in order, named as libvirt names them but camelCased. The client encodes and
 * decodes through this table; test/unit/libvirt/protocol-table.test.ts checks it
 * against libvirt's own definitions.
 */
import { array, hyper, int, none, optional, str, struct, uhyper, uint, uuid, type Codec, type Fields, type StructOf } from './codec.js';
import { domain, network, pool, snapshot, volume } from './types.js';

export interface Call<A, R> {
  readonly number: number;
  readonly args: Codec<A>;
  readonly ret: Codec<R>;
}

export interface Message<M> {
  readonly number: number;
  readonly msg: Codec<M>;
}

type Layout<F extends Fields | null> = F extends Fields ? StructOf<F> : void;

const layout = <F extends Fields | null>(fields: F): Codec<Layout<F>> =>
  (fields === null ? none : struct(fields)) as Codec<Layout<F>>;

/** A call: `null` stands for libvirt's `void` (no _args or no _ret struct). */
const call = <A extends Fields | null, R extends Fields | null>(number: number, args: A, ret: R): Call<Layout<A>, Layout<R>> => ({
  number,
  args: layout(args),
  ret: layout(ret),
});

const message = <M extends Fields>(number: number, msg: M): Message<StructOf<M>> => ({ number, msg: struct(msg) });

/** remote_domain_ip_addr */
const domainIpAddr = struct({ type: int, addr: str, prefix: uint });
/** remote_domain_interface */
const domainInterface = struct({ name: str, hwaddr: optional(str), addrs: array(domainIpAddr) });
/** remote_network_dhcp_lease */
const dhcpLease = struct({
  iface: str,
  expiryTime: hyper,
  type: int,
  mac: optional(str),
  iaid: optional(str),
  ipaddr: str,
  prefix: uint,
  hostname: optional(str),
  clientId: optional(str),
});
/** remote_domain_event_lifecycle_msg */
const domainEventLifecycle = struct({ dom: domain, event: int, detail: int });

export const calls = {
  ConnectOpen: call(1, { name: optional(str), flags: uint }, null),
  ConnectClose: call(2, null, null),
  ConnectGetType: call(3, null, { type: str }),
  ConnectGetVersion: call(4, null, { hvVer: uhyper }),
  ConnectGetCapabilities: call(7, null, { capabilities: str }),
  DomainGetXMLDesc: call(14, { dom: domain, flags: uint }, { xml: str }),
  DomainGetAutostart: call(15, { dom: domain }, { autostart: int }),
  DomainGetInfo: call(16, { dom: domain }, { state: uint, maxMem: uhyper, memory: uhyper, nrVirtCpu: uint, cpuTime: uhyper }),
  DomainLookupByName: call(23, { name: str }, { dom: domain }),
  DomainLookupByUUID: call(24, { uuid }, { dom: domain }),
  DomainReboot: call(27, { dom: domain, flags: uint }, null),
  DomainResume: call(28, { dom: domain }, null),
  DomainSetAutostart: call(29, { dom: domain, autostart: int }, null),
  DomainSuspend: call(34, { dom: domain }, null),
  NetworkCreate: call(39, { net: network }, null),
  NetworkDefineXML: call(41, { xml: str }, { net: network }),
  NetworkDestroy: call(42, { net: network }, null),
  NetworkGetXMLDesc: call(43, { net: network, flags: uint }, { xml: str }),
  NetworkGetBridgeName: call(45, { net: network }, { name: str }),
  NetworkLookupByName: call(46, { name: str }, { net: network }),
  NetworkSetAutostart: call(48, { net: network, autostart: int }, null),
  NetworkUndefine: call(49, { net: network }, null),
  ConnectGetHostname: call(59, null, { hostname: str }),
  ConnectSupportsFeature: call(60, { feature: int }, { supported: int }),
  AuthList: call(66, null, { types: array(int) }),
  AuthPolkit: call(70, null, { complete: int }),
  StoragePoolDefineXML: call(77, { xml: str, flags: uint }, { pool }),
  StoragePoolCreate: call(78, { pool, flags: uint }, null),
  StoragePoolBuild: call(79, { pool, flags: uint }, null),
  StoragePoolDestroy: call(80, { pool }, null),
  StoragePoolUndefine: call(82, { pool }, null),
  StoragePoolRefresh: call(83, { pool, flags: uint }, null),
  StoragePoolLookupByName: call(84, { name: str }, { pool }),
  StoragePoolGetInfo: call(87, { pool }, { state: uint, capacity: uhyper, allocation: uhyper, available: uhyper }),
  StoragePoolGetXMLDesc: call(88, { pool, flags: uint }, { xml: str }),
  StoragePoolSetAutostart: call(90, { pool, autostart: int }, null),
  StorageVolCreateXML: call(93, { pool, xml: str, flags: uint }, { vol: volume }),
  StorageVolDelete: call(94, { vol: volume, flags: uint }, null),
  StorageVolLookupByName: call(95, { pool, name: str }, { vol: volume }),
  StorageVolLookupByPath: call(97, { path: str }, { vol: volume }),
  StorageVolGetInfo: call(98, { vol: volume }, { type: int, capacity: uhyper, allocation: uhyper }),
  StorageVolGetXMLDesc: call(99, { vol: volume, flags: uint }, { xml: str }),
  StorageVolGetPath: call(100, { vol: volume }, { name: str }),
  ConnectGetUri: call(110, null, { uri: str }),
  StorageVolCreateXMLFrom: call(125, { pool, xml: str, clonevol: volume, flags: uint }, { vol: volume }),
  DomainIsActive: call(150, { dom: domain }, { active: int }),
  NetworkIsActive: call(152, { net: network }, { active: int }),
  StoragePoolIsActive: call(154, { pool }, { active: int }),
  ConnectGetLibVersion: call(157, null, { libVer: uhyper }),
  DomainAttachDeviceFlags: call(160, { dom: domain, xml: str, flags: uint }, null),
  DomainDetachDeviceFlags: call(161, { dom: domain, xml: str, flags: uint }, null),
  DomainManagedSave: call(182, { dom: domain, flags: uint }, null),
  DomainHasManagedSaveImage: call(183, { dom: domain, flags: uint }, { result: int }),
  DomainManagedSaveRemove: call(184, { dom: domain, flags: uint }, null),
  DomainSnapshotCreateXML: call(185, { dom: domain, xmlDesc: str, flags: uint }, { snap: snapshot }),
  DomainSnapshotGetXMLDesc: call(186, { snap: snapshot, flags: uint }, { xml: str }),
  DomainSnapshotLookupByName: call(189, { dom: domain, name: str, flags: uint }, { snap: snapshot }),
  DomainRevertToSnapshot: call(192, { snap: snapshot, flags: uint }, null),
  DomainSnapshotDelete: call(193, { snap: snapshot, flags: uint }, null),
  DomainCreateWithFlags: call(196, { dom: domain, flags: uint }, { dom: domain }),
  DomainSetVcpusFlags: call(199, { dom: domain, nvcpus: uint, flags: uint }, null),
  DomainSetMemoryFlags: call(204, { dom: domain, memory: uhyper, flags: uint }, null),
  StorageVolUpload: call(208, { vol: volume, offset: uhyper, length: uhyper, flags: uint }, null),
  StorageVolDownload: call(209, { vol: volume, offset: uhyper, length: uhyper, flags: uint }, null),
  DomainGetState: call(212, { dom: domain, flags: uint }, { state: int, reason: int }),
  DomainUndefineFlags: call(231, { dom: domain, flags: uint }, null),
  DomainDestroyFlags: call(234, { dom: domain, flags: uint }, null),
  DomainShutdownFlags: call(258, { dom: domain, flags: uint }, null),
  StorageVolResize: call(260, { vol: volume, capacity: uhyper, flags: uint }, null),
  ConnectListAllDomains: call(273, { needResults: int, flags: uint }, { domains: array(domain), ret: uint }),
  DomainListAllSnapshots: call(274, { dom: domain, needResults: int, flags: uint }, { snapshots: array(snapshot), ret: int }),
  ConnectListAllStoragePools: call(281, { needResults: int, flags: uint }, { pools: array(pool), ret: uint }),
  StoragePoolListAllVolumes: call(282, { pool, needResults: int, flags: uint }, { vols: array(volume), ret: uint }),
  ConnectListAllNetworks: call(283, { needResults: int, flags: uint }, { nets: array(network), ret: uint }),
  ConnectDomainEventCallbackRegisterAny: call(316, { eventId: int, dom: optional(domain) }, { callbackId: int }),
  ConnectDomainEventCallbackDeregisterAny: call(317, { callbackId: int }, null),
  NetworkGetDhcpLeases: call(341, { net: network, mac: optional(str), needResults: int, flags: uint }, { leases: array(dhcpLease), ret: uint }),
  DomainDefineXMLFlags: call(350, { xml: str, flags: uint }, { dom: domain }),
  DomainInterfaceAddresses: call(353, { dom: domain, source: uint, flags: uint }, { ifaces: array(domainInterface) }),
};

/** Messages the daemon sends unasked (events). */
export const messages = {
  DomainEventCallbackLifecycle: message(318, { callbackId: int, msg: domainEventLifecycle }),
};

export type CallName = keyof typeof calls;
export type MessageName = keyof typeof messages;
export type ProcName = CallName | MessageName;

type CallTable = typeof calls;
export type ArgsOf<K extends CallName> = CallTable[K] extends Call<infer A, unknown> ? A : never;
export type RetOf<K extends CallName> = CallTable[K] extends Call<unknown, infer R> ? R : never;

/** The table seen through ArgsOf/RetOf, so that generic code can index it. */
export const callTable: { readonly [K in CallName]: Call<ArgsOf<K>, RetOf<K>> } = calls;

/** Procedure numbers by name. */
export const Proc = Object.fromEntries(
  [...Object.entries(calls), ...Object.entries(messages)].map(([name, p]) => [name, p.number]),
) as { readonly [K in ProcName]: number };

const namesByNumber = new Map<number, string>(Object.entries(Proc).map(([k, v]) => [v, k]));

export function procedureName(n: number): string {
  return namesByNumber.get(n) ?? `procedure ${n}`;
}
