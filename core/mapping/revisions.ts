/**
 * The last revisions that were in force (`<prefix>:mapping:revisions`, a hash
 * revision → `{at, document}`), so that the console can show what changed
 * between two of them whatever the source keeps (a file keeps no history,
 * CouchDB compacts its own). Written once per revision however many hubs see
 * it (HSETNX), trimmed to the newest {@link KEPT}.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/keys.ts';

const KEPT = 30;

export interface KeptRevision {
  revision: string;
  /** When it came into force (ms). */
  at: number;
  document: unknown;
}

export async function keepRevision(redis: Redis, keys: Keys, revision: string, document: unknown): Promise<void> {
  const added = await redis.hsetnx(keys.mappingRevisions, revision, JSON.stringify({ at: Date.now(), document }));
  if (added && (await redis.hlen(keys.mappingRevisions)) > KEPT) {
    const old = (await keptRevisions(redis, keys)).slice(KEPT).map((r) => r.revision);
    if (old.length) await redis.hdel(keys.mappingRevisions, ...old);
  }
}

/** Newest first. */
export async function keptRevisions(redis: Redis, keys: Keys): Promise<KeptRevision[]> {
  const all = await redis.hgetall(keys.mappingRevisions);
  return Object.entries(all)
    .map(([revision, json]) => ({ revision, ...(JSON.parse(json) as { at: number; document: unknown }) }))
    .sort((a, b) => b.at - a.at);
}
