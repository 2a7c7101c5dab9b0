/**
 * Sizes as people write them in vmenv.yaml: `2G`, `512M`, `2GiB`, `1.5G`, `10GB`.
 *
 * Every unit is binary (K = 1024 bytes, M = 1024 K, …), whether written `G`, `GB` or
 * `GiB`, as QEMU and qemu-img read them: nobody sizes a VM's memory in powers of ten.
 * Case does not matter. A bare number (a YAML number, or a string of digits) is in the
 * field's own unit: MiB for `memory`, GiB for disk sizes.
 */

export const KiB = 1024;
export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
export const TiB = 1024 ** 4;

const UNIT_BYTES: Record<string, number> = { b: 1, k: KiB, m: MiB, g: GiB, t: TiB, p: 1024 ** 5 };

/** The unit a bare number is in. */
export type BareUnit = 'MiB' | 'GiB';

const SIZE_RE = /^(\d+(?:\.\d+)?|\.\d+)\s*(?:([kmgtp])(?:i?b)?|(b))?$/i;

/** A pattern (for the JSON Schema) that matches the strings parseSize accepts. */
export const SIZE_PATTERN = '^\\s*(\\d+(\\.\\d+)?|\\.\\d+)\\s*([kKmMgGtTpP]([iI]?[bB])?|[bB])?\\s*$';

/**
 * Bytes for a size, or undefined when the text is not a size. `value` is a YAML number
 * or string; a bare number is in `bare` units. The result may be fractional (1.3 MiB in
 * bytes is not whole); callers decide how exact they need it.
 */
export function parseSize(value: number | string, bare: BareUnit): number | undefined {
  const bareBytes = bare === 'MiB' ? MiB : GiB;
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * bareBytes : undefined;
  const m = SIZE_RE.exec(value.trim());
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] ?? m[3])?.toLowerCase();
  const bytes = n * (unit === undefined ? bareBytes : UNIT_BYTES[unit]!);
  return Number.isFinite(bytes) ? bytes : undefined;
}

/** `2 GiB`, `512 MiB`, `1.5 GiB`, `123 bytes`: a size for messages. */
export function formatSize(bytes: number): string {
  const units: Array<[string, number]> = [
    ['TiB', TiB],
    ['GiB', GiB],
    ['MiB', MiB],
    ['KiB', KiB],
  ];
  for (const [name, size] of units) {
    if (bytes >= size) {
      const n = bytes / size;
      return `${Number.isInteger(n) ? n : Number(n.toFixed(2))} ${name}`;
    }
  }
  return `${bytes} bytes`;
}
