/**
 * Redis answers streams and hashes as flat lists (`[field, value, …]`) and
 * takes them the same way: the two conversions, in one place.
 */

/** Flatten `{a: '1'}` into `['a', '1']`, skipping undefined values. */
export function pairs(record: Record<string, string | number | undefined>): string[] {
  const out: string[] = [];
  pushPairs(out, record);
  return out;
}

/**
 * {@link pairs} written onto the end of `out` (a script call's arguments, built
 * in place: the hub routes tens of thousands of entries a second, and every
 * array in between is garbage to collect); returns how many pairs.
 */
export function pushPairs(out: Array<string | number>, record: Record<string, string | number | undefined>): number {
  let count = 0;
  for (const key in record) {
    const value = record[key];
    if (value === undefined) continue;
    out.push(key, String(value));
    count += 1;
  }
  return count;
}

/** `['a', '1', 'b', '2']` → `{a: '1', b: '2'}`. */
export function fromPairs<T = string>(flat: readonly T[]): Record<string, T> {
  const out: Record<string, T> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1]!;
  return out;
}
