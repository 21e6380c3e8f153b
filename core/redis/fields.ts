/**
 * Redis answers streams and hashes as flat lists (`[field, value, …]`) and
 * takes them the same way: the two conversions, in one place.
 */

/** Flatten `{a: '1'}` into `['a', '1']`, skipping undefined values. */
export function pairs(record: Record<string, string | number | undefined>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(record)) if (value !== undefined) out.push(key, String(value));
  return out;
}

/** `['a', '1', 'b', '2']` → `{a: '1', b: '2'}`. */
export function fromPairs<T = string>(flat: readonly T[]): Record<string, T> {
  const out: Record<string, T> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1]!;
  return out;
}
