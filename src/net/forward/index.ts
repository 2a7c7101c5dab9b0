/**
 * Port forwarding by a process of vmenv's own (NAT networking): start one per machine,
 * record its pid, stop it with the machine. See process.ts for the API, ports.ts for
 * port checks, spec.ts for what it serves. vmenv's own modules import those directly.
 */
export { ForwardBindError, ForwarderStartError } from './errors.js';
export { forwarderRunning, startForwarder, stopForwarder, type RunningForwarder } from './process.js';
export { isPortFree, nextFreePort, portHolder } from './ports.js';
export type { ForwardMapping, ForwardSpec } from './spec.js';
