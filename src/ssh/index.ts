/** Guest access over SSH: keys, host key pinning, sessions, waiting, OpenSSH config. */
export * from './errors.js';
export * from './keys.js';
export * from './host-key.js';
export * from './client.js';
export * from './wait.js';
export * from './config.js';
