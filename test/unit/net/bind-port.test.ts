import dgram from 'node:dgram';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bindPort, boundPortNumber, closeBoundPort } from '../../../src/net/bind-port.js';

afterEach(() => vi.restoreAllMocks());

describe('bindPort', () => {
  it('binds TCP and UDP on a port the kernel picks, and closes them again', async () => {
    for (const protocol of ['tcp', 'udp'] as const) {
      const b = await bindPort(protocol, '127.0.0.1', 0);
      expect(b.protocol).toBe(protocol);
      expect(boundPortNumber(b)).toBeGreaterThan(0);
      await closeBoundPort(b);
      expect(boundPortNumber(b)).toBeUndefined();
      await closeBoundPort(b); // twice is fine
    }
  });

  it('rejects with the system code for a taken UDP port, and closes the socket it made', async () => {
    const held = await bindPort('udp', '127.0.0.1', 0);
    const port = boundPortNumber(held) as number;
    const close = vi.spyOn(dgram.Socket.prototype, 'close');
    try {
      await expect(bindPort('udp', '127.0.0.1', port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(close).toHaveBeenCalledTimes(1);
    } finally {
      close.mockRestore();
      await closeBoundPort(held);
    }
  });

  it('rejects with the system code for a taken TCP port', async () => {
    const held = await bindPort('tcp', '127.0.0.1', 0);
    try {
      await expect(bindPort('tcp', '127.0.0.1', boundPortNumber(held) as number)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await closeBoundPort(held);
    }
  });
});
