/** A small HTTP server on 127.0.0.1 for download tests: Range on or off, dropped connections, request log. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServedFile {
  body: Buffer;
  contentType?: string;
}

export interface TestServerOptions {
  /** Honour Range requests (default true). */
  ranges?: boolean;
}

export class TestServer {
  readonly files = new Map<string, ServedFile>();
  readonly requests: { method: string; path: string; range: string | undefined }[] = [];
  /** Drop the connection after this many body bytes, for the next N responses. */
  dropAfter: { bytes: number; times: number } | undefined;
  ranges: boolean;
  private server: Server | undefined;
  port = 0;

  constructor(options: TestServerOptions = {}) {
    this.ranges = options.ranges ?? true;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const range = req.headers.range;
    this.requests.push({ method: req.method ?? 'GET', path, range });
    const file = this.files.get(path);
    if (file === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    let start = 0;
    let status = 200;
    const headers: Record<string, string | number> = { 'content-type': file.contentType ?? 'application/octet-stream' };
    if (this.ranges) headers['accept-ranges'] = 'bytes';
    if (this.ranges && range !== undefined) {
      const m = /^bytes=(\d+)-$/.exec(range);
      if (m === null || Number(m[1]) >= file.body.length) {
        res.writeHead(416, { 'content-range': `bytes */${file.body.length}` }).end();
        return;
      }
      start = Number(m[1]);
      status = 206;
      headers['content-range'] = `bytes ${start}-${file.body.length - 1}/${file.body.length}`;
    }
    const body = file.body.subarray(start);
    headers['content-length'] = body.length;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (this.dropAfter !== undefined && this.dropAfter.times > 0) {
      this.dropAfter.times -= 1;
      const cut = Math.min(this.dropAfter.bytes, body.length - 1);
      // Give the client time to take in what was sent, then cut the connection.
      res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 150));
      return;
    }
    // Send in pieces so that progress has something to report.
    const piece = 64 * 1024;
    let off = 0;
    const pump = (): void => {
      while (off < body.length) {
        const ok = res.write(body.subarray(off, off + piece));
        off += piece;
        if (!ok) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  }
}
