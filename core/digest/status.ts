/** Throttle windows and digests as `hub status` shows them. */
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/keys.ts';
import { HELD_FIELD } from './throttle-lua.ts';

export interface DigestStatus {
  id: string;
  group: string;
  key: string;
  /** `open` (collecting), `sealed` (closed, being sent), `sent`. */
  state: string;
  /** Messages held in it. */
  held: number;
  openedAt?: string;
  /** When the window closes (open), or closed. */
  closesAt?: string;
  firstHeldAt?: string;
  lastHeldAt?: string;
  sentAt?: string;
}

const iso = (ms: string | undefined): string | undefined => (ms && Number.isFinite(Number(ms)) ? new Date(Number(ms)).toISOString() : undefined);
const DIGEST_ID = /^digest-\d+$/;

export function isDigestId(id: string): boolean {
  return DIGEST_ID.test(id);
}

export async function digestStatus(redis: Redis, keys: Keys, id: string): Promise<DigestStatus | undefined> {
  const h = await redis.hgetall(keys.digest(id));
  if (!h.state) return undefined;
  const opt = (name: string, value: string | undefined) => (value === undefined ? {} : { [name]: value });
  return {
    id,
    group: h.group ?? '',
    key: h.key ?? '',
    state: h.state,
    held: Number(h.count ?? 0),
    ...opt('openedAt', iso(h.opened)),
    ...opt('closesAt', iso(h.due)),
    ...opt('firstHeldAt', iso(h.first)),
    ...opt('lastHeldAt', iso(h.last)),
    ...opt('sentAt', iso(h.sentAt)),
  };
}

/** The digests a held message is (or will be) carried by, from its record's fields. */
export async function heldIn(redis: Redis, keys: Keys, record: Record<string, string>): Promise<DigestStatus[]> {
  const ids = Object.entries(record).filter(([field]) => field.startsWith(HELD_FIELD)).map(([, id]) => id);
  const found = await Promise.all(ids.map((id) => digestStatus(redis, keys, id)));
  return found.filter((d): d is DigestStatus => d !== undefined);
}

/** Windows not yet sent (open, or sealed and being sent): how many, and the `limit` closing first. */
export async function openWindows(redis: Redis, keys: Keys, limit = 10): Promise<{ count: number; first: DigestStatus[] }> {
  const [count, ids] = await Promise.all([redis.zcard(keys.digests), redis.zrange(keys.digests, 0, limit - 1)]);
  const first = await Promise.all(ids.map((id) => digestStatus(redis, keys, id)));
  return { count, first: first.filter((d): d is DigestStatus => d !== undefined) };
}
