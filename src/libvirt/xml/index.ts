/**
 * Pure builders for libvirt XML documents: typed spec in, XML text out, no I/O.
 * Invalid specs throw XmlSpecError (a UserError naming the field); strings holding
 * characters XML 1.0 cannot carry throw XmlCharacterError.
 */
export { XmlCharacterError, XmlSpecError } from './errors.js';
export { el, text, renderXml, escapeAttr, escapeText, unescapeXml, assertXmlChars, isXmlChar } from './writer.js';
export type { XmlAttrValue, XmlChild, XmlElement, XmlNode, XmlText } from './writer.js';
export {
  domainElement,
  domainXml,
  QEMU_XMLNS,
  VMENV_DOMAIN_XMLNS,
  VMENV_METADATA_ELEMENT,
  VMENV_METADATA_PREFIX,
} from './domain.js';
export type {
  Arch,
  BridgeInterfaceSpec,
  CpuSpec,
  CrashAction,
  DirectInterfaceSpec,
  DiskBus,
  DiskCache,
  DiskFormat,
  DiskSource,
  DiskSpec,
  DomainSpec,
  DomainType,
  FilesystemSpec,
  FirmwareSpec,
  GraphicsSpec,
  InterfaceSpec,
  LifecycleAction,
  NetworkInterfaceSpec,
  NinePFilesystemSpec,
  SerialSpec,
  UserInterfaceSpec,
  VirtiofsFilesystemSpec,
  VmenvMetadata,
} from './domain.js';
export { normalizePortForward, qemuOptValue, userNetQemuArgs } from './qemu-args.js';
export type { NicModel, PortForward, UserNetArgsSpec } from './qemu-args.js';
export { networkElement, networkXml } from './network.js';
export type { DhcpHost, NetworkBridge, NetworkForward, NetworkIpv4, NetworkSpec } from './network.js';
export { volumeElement, volumeXml } from './volume.js';
export type { VolumeFormat, VolumeSpec } from './volume.js';
export { poolElement, poolXml } from './pool.js';
export type { PoolSpec } from './pool.js';
export type { PermissionsSpec } from './permissions.js';
export { checkMac, checkUuid, formatIpv4, parseIpv4 } from './validate.js';
