/**
 * Dead letters as the console filters them: by channel (`ingress` for the
 * letters of messages that never reached a channel), by words of the reason,
 * and by time (the letter's stream id is when it died).
 */
import type { Redis } from 'ioredis';
import type { Letter } from '../journal/replay.ts';
import { fromPairs } from '../redis/fields.ts';
import type { Keys } from '../redis/keys.ts';

export interface LetterFilter {
  channel?: string;
  reason?: string;
  /** ms since the epoch */
  since?: number;
  until?: number;
}

const PAGE = 1000;
/** Letters looked at for one list: enough for any real backlog of dead letters; the page says when there were more. */
const MAX_SCANNED = 20_000;

export function filterOf(query: URLSearchParams | Record<string, unknown>): LetterFilter {
  const get = (name: string) => {
    const value = query instanceof URLSearchParams ? query.get(name) : query[name];
    return typeof value === 'string' && value.trim() !== '' ? value.trim() : typeof value === 'number' ? String(value) : undefined;
  };
  const time = (name: string) => {
    const value = get(name);
    if (value === undefined) return undefined;
    const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
    if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`${name}: expected a time such as 2026-12-04T16:00:00Z, got ${JSON.stringify(value)}`);
    return ms;
  };
  const filter: LetterFilter = {};
  const channel = get('channel');
  const reason = get('reason');
  const since = time('since');
  const until = time('until');
  if (channel !== undefined) filter.channel = channel;
  if (reason !== undefined) filter.reason = reason;
  if (since !== undefined) filter.since = since;
  if (until !== undefined) filter.until = until;
  return filter;
}

function matches(letter: Letter, filter: LetterFilter): boolean {
  const { fields } = letter;
  if (filter.channel !== undefined && (fields.stage === 'ingress' ? 'ingress' : fields.channel) !== filter.channel) return false;
  if (filter.reason !== undefined && !(fields.reason ?? '').toLowerCase().includes(filter.reason.toLowerCase())) return false;
  return true;
}

const read = (rows: Array<[string, string[]]>): Letter[] => rows.map(([id, flat]) => ({ id, fields: fromPairs(flat) }));

/** The newest `limit` letters that match, and how many matched among those looked at. */
export async function listLetters(redis: Redis, keys: Keys, filter: LetterFilter, limit: number): Promise<{ letters: Letter[]; matched: number; complete: boolean }> {
  const letters: Letter[] = [];
  let matched = 0;
  let scanned = 0;
  let to = filter.until === undefined ? '+' : String(filter.until);
  const from = filter.since === undefined ? '-' : String(filter.since);
  for (;;) {
    const page = read((await redis.xrevrange(keys.dead, to, from, 'COUNT', PAGE)) as Array<[string, string[]]>);
    for (const letter of page) {
      if (!matches(letter, filter)) continue;
      matched += 1;
      if (letters.length < limit) letters.push(letter);
    }
    scanned += page.length;
    if (page.length < PAGE) return { letters, matched, complete: true };
    if (scanned >= MAX_SCANNED) return { letters, matched, complete: false };
    to = `(${page.at(-1)!.id}`;
  }
}

/**
 * Every letter that matches, oldest first, a page at a time, among those there
 * were when the selection began: the letters a replay itself causes come after
 * and are left for the next one.
 */
export async function* selectLetters(redis: Redis, keys: Keys, filter: LetterFilter): AsyncGenerator<Letter[]> {
  const last = ((await redis.xrevrange(keys.dead, filter.until === undefined ? '+' : String(filter.until), '-', 'COUNT', 1)) as Array<[string, string[]]>)[0]?.[0];
  for (let from = filter.since === undefined ? '-' : String(filter.since); last !== undefined; ) {
    const page = read((await redis.xrange(keys.dead, from, last, 'COUNT', PAGE)) as Array<[string, string[]]>);
    if (page.length === 0) return;
    yield page.filter((letter) => matches(letter, filter));
    from = `(${page.at(-1)!.id}`;
  }
}

/** The named letters that still exist. */
export async function lettersById(redis: Redis, keys: Keys, ids: string[]): Promise<Letter[]> {
  return read((await Promise.all(ids.map((id) => redis.xrange(keys.dead, id, id)))).flat() as Array<[string, string[]]>);
}
