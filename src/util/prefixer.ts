/** Writes chunks to `out` line by line, each line prefixed (a machine's name in front of what its provisioners print). */
export function prefixer(prefix: string, out: NodeJS.WritableStream): { write(chunk: Buffer): void; end(): void } {
  let rest = '';
  return {
    write(chunk) {
      const text = rest + chunk.toString('utf8');
      const lines = text.split('\n');
      rest = lines.pop()!;
      for (const l of lines) out.write(`${prefix}${l}\n`);
    },
    end() {
      if (rest) out.write(`${prefix}${rest}\n`);
      rest = '';
    },
  };
}
