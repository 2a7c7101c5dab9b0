/**
 * Errors raised by the libvirt client. A LibvirtError is an error reply from the
 * daemon (libvirt's virError: code, domain, message). The others are failures of the
 * client itself: cannot connect, connection lost, malformed data.
 */

/** libvirt's virErrorNumber values that vmenv reacts to. */
export const ErrorCode = {
  internalError: 1,
  noSupport: 3,
  noConnect: 5,
  invalidArg: 8,
  operationFailed: 9,
  xmlError: 27,
  domExist: 28,
  operationDenied: 29,
  systemError: 38,
  rpc: 39,
  noDomain: 42,
  noNetwork: 43,
  authFailed: 45,
  noStoragePool: 49,
  noStorageVol: 50,
  operationInvalid: 55,
  noSecret: 66,
  operationTimeout: 68,
  noDomainSnapshot: 72,
  operationAborted: 78,
  operationUnsupported: 84,
  agentUnresponsive: 86,
  resourceBusy: 87,
  accessDenied: 88,
  storageVolExist: 90,
  noHostname: 108,
} as const;

/** A subset of libvirt's virErrorDomain values, for messages. */
const errorDomainNames: Record<number, string> = {
  7: 'rpc', 10: 'qemu', 13: 'remote', 18: 'storage', 19: 'network', 20: 'domain',
  35: 'snapshot', 38: 'streams', 45: 'uri', 46: 'auth', 50: 'ssh', 55: 'access',
};

export interface LibvirtErrorDetails {
  code: number;
  domain: number;
  message: string;
  level: number;
  /** The remote procedure that failed, when known (e.g. "DomainLookupByName"). */
  procedure?: string;
  str1?: string | null;
  str2?: string | null;
  str3?: string | null;
  int1?: number;
  int2?: number;
}

export class LibvirtError extends Error {
  readonly code: number;
  readonly domain: number;
  readonly level: number;
  readonly procedure: string | undefined;
  readonly details: LibvirtErrorDetails;

  constructor(details: LibvirtErrorDetails) {
    super(details.message);
    this.name = 'LibvirtError';
    this.code = details.code;
    this.domain = details.domain;
    this.level = details.level;
    this.procedure = details.procedure;
    this.details = details;
  }

  get domainName(): string {
    return errorDomainNames[this.domain] ?? `domain ${this.domain}`;
  }
}

/** The client could not reach the daemon at all. */
export class LibvirtConnectError extends Error {
  constructor(
    message: string,
    readonly target: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LibvirtConnectError';
  }
}

/** The connection broke or was closed while calls were outstanding. */
export class LibvirtConnectionClosedError extends Error {
  constructor(message = 'the connection to libvirt was closed', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LibvirtConnectionClosedError';
  }
}

/** The bytes on the wire did not follow the protocol: a bug here or in the peer. */
export class LibvirtProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibvirtProtocolError';
  }
}

/** A URI we cannot use, with what is wrong with it. */
export class LibvirtUriError extends Error {
  constructor(
    message: string,
    readonly uri: string,
  ) {
    super(message);
    this.name = 'LibvirtUriError';
  }
}

function hasCode(err: unknown, ...codes: number[]): err is LibvirtError {
  return err instanceof LibvirtError && codes.includes(err.code);
}

export const isNotFound = (err: unknown): err is LibvirtError =>
  hasCode(
    err,
    ErrorCode.noDomain,
    ErrorCode.noNetwork,
    ErrorCode.noStoragePool,
    ErrorCode.noStorageVol,
    ErrorCode.noDomainSnapshot,
    ErrorCode.noSecret,
  );
export const isDomainNotFound = (err: unknown): err is LibvirtError => hasCode(err, ErrorCode.noDomain);
export const isNetworkNotFound = (err: unknown): err is LibvirtError => hasCode(err, ErrorCode.noNetwork);
export const isPoolNotFound = (err: unknown): err is LibvirtError => hasCode(err, ErrorCode.noStoragePool);
export const isVolumeNotFound = (err: unknown): err is LibvirtError => hasCode(err, ErrorCode.noStorageVol);
export const isSnapshotNotFound = (err: unknown): err is LibvirtError =>
  hasCode(err, ErrorCode.noDomainSnapshot);
export const isAlreadyExists = (err: unknown): err is LibvirtError =>
  hasCode(err, ErrorCode.domExist, ErrorCode.storageVolExist) ||
  (err instanceof LibvirtError && err.code === ErrorCode.operationFailed && /already exists/i.test(err.message));
/** The operation does not fit the object's state, e.g. destroying a domain that is not running. */
export const isOperationInvalid = (err: unknown): err is LibvirtError => hasCode(err, ErrorCode.operationInvalid);
export const isAccessDenied = (err: unknown): err is LibvirtError =>
  hasCode(err, ErrorCode.accessDenied, ErrorCode.authFailed, ErrorCode.operationDenied);
export const isUnsupported = (err: unknown): err is LibvirtError =>
  hasCode(err, ErrorCode.noSupport, ErrorCode.operationUnsupported);
