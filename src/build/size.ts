/**
 * Sizes as recipes write them: `1G`, `512M`, `1.5GiB`, `2048` (bytes). Suffixes are
 * binary (K = 1024), as qemu-img and mkfs read them; `B` and `iB` are optional.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

const UNITS: Record<string, number> = { '': 1, K: KiB, M: MiB, G: GiB, T: TiB };
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i;

/** Bytes for a size string or number, or undefined when it is not a size. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const m = SIZE_RE.exec(value.trim());
  if (m === null) return undefined;
  const unit = UNITS[m[2]!.toUpperCase()]!;
  const bytes = Math.ceil(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** A short human size: 1.5 GiB, 245 MiB, 12 KiB, 300 B. */
export function formatSize(bytes: number): string {
  const steps: [number, string][] = [
    [TiB, 'TiB'],
    [GiB, 'GiB'],
    [MiB, 'MiB'],
    [KiB, 'KiB'],
  ];
  for (const [unit, name] of steps) {
    if (bytes >= unit) {
      const v = bytes / unit;
      return `${v >= 100 || Number.isInteger(v) ? Math.round(v) : v.toFixed(1)} ${name}`;
    }
  }
  return `${bytes} B`;
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
