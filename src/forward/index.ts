/**
 * Port forwarding by a process of vmenv's own (NAT networking): start one per machine,
 * record its pid, stop it with the machine. See process.ts for the API, ports.ts for
 * port checks, spec.ts for what it serves.
 */
export { ForwardBindError, ForwarderStartError } from './errors.js';
export {
  forwarderEntry,
  forwarderRunning,
  startForwarder,
  stopForwarder,
  type ForwarderIdentity,
  type RunningForwarder,
  type StartForwarderOptions,
  type StopResult,
} from './process.js';
export { describePortHolder, portHolderProcesses, isPortFree, nextFreePort, NoFreePortError, portHolder, portText, type PortHolder, type PortHolderProcess } from './ports.js';
export {
  checkForwardSpec,
  DEFAULT_UDP_IDLE_MS,
  ForwardSpecError,
  mappingsFromConfig,
  type ForwardMapping,
  type ForwardProtocol,
  type ForwardSpec,
} from './spec.js';
