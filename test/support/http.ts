import { get } from 'node:http';

/** GET http://127.0.0.1:<port>/ (loopback only), a bounded few tries while the guest's server starts. */
export async function fetchLoopback(port: number, tries = 20): Promise<string> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const req = get({ host: '127.0.0.1', port, path: '/', timeout: 5000 }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(body));
        });
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.on('error', reject);
      });
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`nothing answered on 127.0.0.1:${port}: ${String(last)}`);
}
