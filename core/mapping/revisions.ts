/**
 * The last revisions that were in force, so that the console can show what
 * changed between two of them whatever the source keeps (a file keeps no
 * history, CouchDB compacts its own). Two keys, both written only here:
 * `<prefix>:mapping:revisions`, a hash revision → `{at, document}`, and
 * `<prefix>:mapping:revisions:at`, a sorted set revision → at (ms), so that
 * listing and trimming read no document: a mapping of 10,000 groups is a few
 * MB, and thirty of them read at every new revision would be hundreds.
 * Written once per revision however many hubs see it, trimmed to the newest
 * {@link KEPT}.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/keys.ts';

const KEPT = 30;

export interface KeptRevision {
  revision: string;
  /** When it came into force (ms). */
  at: number;
}

/** `documentJson`: the document as JSON text (the caller has it already, for the mapping in force). */
export async function keepRevision(redis: Redis, keys: Keys, revision: string, documentJson: string): Promise<void> {
  const at = Date.now();
  // Not a transaction (the README's ACL grants no MULTI): a hub stopped between two of these commands leaves the two keys apart, and mendIndex joins them again.
  const [added] = await Promise.all([
    redis.hsetnx(keys.mappingRevisions, revision, `{"at":${at},"document":${documentJson}}`),
    redis.zadd(keys.mappingRevisionsAt, 'NX', at, revision),
  ]);
  if (!added) return; // another hub kept it first
  await mendIndex(redis, keys);
  const old = await redis.zrange(keys.mappingRevisionsAt, 0, -(KEPT + 1));
  if (old.length) await Promise.all([redis.hdel(keys.mappingRevisions, ...old), redis.zrem(keys.mappingRevisionsAt, ...old)]);
}

/** Newest first, without their documents. */
export async function keptRevisions(redis: Redis, keys: Keys): Promise<KeptRevision[]> {
  await mendIndex(redis, keys);
  const flat = await redis.zrevrange(keys.mappingRevisionsAt, 0, -1, 'WITHSCORES');
  const kept: KeptRevision[] = [];
  for (let i = 0; i < flat.length; i += 2) kept.push({ revision: flat[i]!, at: Number(flat[i + 1]) });
  return kept;
}

/** The document of a kept revision, or undefined once it is no longer kept. */
export async function keptDocument(redis: Redis, keys: Keys, revision: string): Promise<unknown> {
  const json = await redis.hget(keys.mappingRevisions, revision);
  return json === null ? undefined : (JSON.parse(json) as { document: unknown }).document;
}

/**
 * The sorted set as the hash: revisions kept before it existed (a hub
 * upgraded with its Redis) are read once to learn when each came into force,
 * and revisions an operator deleted from the hash are dropped from it.
 */
async function mendIndex(redis: Redis, keys: Keys): Promise<void> {
  const [documents, entries] = await Promise.all([redis.hlen(keys.mappingRevisions), redis.zcard(keys.mappingRevisionsAt)]);
  if (documents === entries) return;
  const [fields, ranked] = await Promise.all([redis.hkeys(keys.mappingRevisions), redis.zrange(keys.mappingRevisionsAt, 0, -1)]);
  const [kept, indexed] = [new Set(fields), new Set(ranked)];
  const stale = ranked.filter((revision) => !kept.has(revision));
  const missing = fields.filter((revision) => !indexed.has(revision));
  if (stale.length) await redis.zrem(keys.mappingRevisionsAt, ...stale);
  if (missing.length === 0) return;
  const records = await redis.hmget(keys.mappingRevisions, ...missing);
  const scored = missing.flatMap((revision, i) => (records[i] === null ? [] : [cameIntoForce(records[i]!), revision]));
  if (scored.length) await redis.zadd(keys.mappingRevisionsAt, 'NX', ...scored);
}

/** A kept revision's `at`; 0 (the oldest, trimmed first) when the record is not what this module writes. */
function cameIntoForce(json: string): number {
  try {
    const at = (JSON.parse(json) as { at?: unknown }).at;
    return typeof at === 'number' && Number.isFinite(at) ? at : 0;
  } catch {
    return 0;
  }
}
