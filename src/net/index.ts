/** The network concern: management network subnets, DHCP lease files, IP discovery. */
export * from '../util/ip.js';
export * from './subnet.js';
export * from './dnsmasq-leases.js';
export * from './lease-files.js';
export * from './ip-discovery.js';
