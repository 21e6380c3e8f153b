/** Throttle windows and digests as `hub status` shows them. */
import type { Redis } from 'ioredis';
import type { BodyFormat } from '../format.ts';
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

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());
const DIGEST_ID = /^digest-\d+$/;

export function isDigestId(id: string): boolean {
  return DIGEST_ID.test(id);
}

/** A digest's hash (`<prefix>:digest:<id>`, written by the throttle scripts) as the digester and `hub status` read it. */
export interface DigestRecord {
  state: string;
  group: string;
  key: string;
  count: number;
  opened?: number;
  due?: number;
  first?: number;
  last?: number;
  sentAt?: number;
  latest: { subject?: string; body: string; format: BodyFormat };
}

export async function readDigest(redis: Redis, keys: Keys, id: string): Promise<DigestRecord | undefined> {
  const h = await redis.hgetall(keys.digest(id));
  if (!h.state) return undefined;
  const ms = (value: string | undefined) => (value && Number.isFinite(Number(value)) ? Number(value) : undefined);
  return {
    state: h.state,
    group: h.group ?? '',
    key: h.key ?? '',
    count: Number(h.count ?? 0),
    opened: ms(h.opened),
    due: ms(h.due),
    first: ms(h.first),
    last: ms(h.last),
    sentAt: ms(h.sentAt),
    latest: { ...(h.subject ? { subject: h.subject } : {}), body: h.body ?? '', format: (h.format ?? 'html') as BodyFormat },
  };
}

export async function digestStatus(redis: Redis, keys: Keys, id: string): Promise<DigestStatus | undefined> {
  const d = await readDigest(redis, keys, id);
  if (!d) return undefined;
  const opt = (name: string, value: string | undefined) => (value === undefined ? {} : { [name]: value });
  return {
    id,
    group: d.group,
    key: d.key,
    state: d.state,
    held: d.count,
    ...opt('openedAt', iso(d.opened)),
    ...opt('closesAt', iso(d.due)),
    ...opt('firstHeldAt', iso(d.first)),
    ...opt('lastHeldAt', iso(d.last)),
    ...opt('sentAt', iso(d.sentAt)),
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
