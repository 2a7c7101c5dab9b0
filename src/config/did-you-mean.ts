/**
 * "Did you mean …?" for misspelt keys and values: the optimal-string-alignment edit
 * distance (insertions, deletions, substitutions and swaps of two neighbours).
 */

/** Edit distance between a and b, counting a swap of two adjacent characters as one edit. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  // Three rolling rows: i-2, i-1, i.
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      row.push(d);
    }
    prev2 = prev;
    prev = row;
  }
  return prev[b.length]!;
}

/** Lower case without separators, so that `diskSize`, `disk-size` and `DISK_SIZE` meet. */
function folded(s: string): string {
  return s.toLowerCase().replace(/[-_\s.]/g, '');
}

/**
 * The candidate the user most likely meant by `input`, or undefined when none is close:
 * the same word in another case or with other separators, else the nearest by edit
 * distance within a third of the word's length (at least 1, at most 3 edits).
 */
export function didYouMean(input: string, candidates: Iterable<string>): string | undefined {
  const list = [...candidates];
  const f = folded(input);
  const same = list.find((c) => folded(c) === f);
  if (same !== undefined) return same;
  const limit = Math.min(3, Math.max(1, Math.floor(input.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of list) {
    const d = Math.min(editDistance(input.toLowerCase(), c.toLowerCase()), editDistance(f, folded(c)));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
