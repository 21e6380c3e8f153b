/**
 * The revisions kept for the console's "What changed" (core/mapping/revisions.ts),
 * against a real Redis: the newest 30, newest first; keeping and listing them
 * reads no document (a big mapping is megabytes, thirty of them hundreds);
 * revisions kept by an earlier version, without the index, are listed and
 * trimmed with the rest, and a record that is not one is trimmed first.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { keepRevision, keptDocument, keptRevisions } from '../../core/mapping/revisions.ts';
import { createKeys } from '../../core/redis/keys.ts';
import { monitorRedis } from '../support/monitor.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

const documentOf = (n: number) => ({ mapping: { [`#g${n}`]: { matrix: [`!room${n}:example.org`] } } });

describe('kept mapping revisions', () => {
  const redis = new Redis(REDIS_URL);
  const prefixes: string[] = [];
  const keysFor = (name: string) => {
    const prefix = testPrefix(name);
    prefixes.push(prefix);
    return createKeys(prefix);
  };
  /** Keeps revisions `from`…`to` one after another, each a few milliseconds after the one before. */
  const keep = async (keys: ReturnType<typeof createKeys>, from: number, to: number) => {
    for (let n = from; n <= to; n += 1) {
      await keepRevision(redis, keys, `rev-${n}`, JSON.stringify(documentOf(n)));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  before(() => redis.ping());
  after(async () => {
    for (const prefix of prefixes) await dropPrefix(prefix, redis);
    redis.disconnect();
  });

  test('the newest 30 are kept, newest first, each with its document; a revision kept twice (two hubs) is one', async () => {
    const keys = keysFor('revisions');
    await keep(keys, 1, 35);
    await keepRevision(redis, keys, 'rev-35', JSON.stringify(documentOf(35)));
    const kept = await keptRevisions(redis, keys);
    assert.deepEqual(
      kept.map((r) => r.revision),
      Array.from({ length: 30 }, (_, i) => `rev-${35 - i}`),
    );
    assert.ok(kept.every((r, i) => i === 0 || r.at < kept[i - 1]!.at));
    assert.deepEqual(await keptDocument(redis, keys, 'rev-6'), documentOf(6));
    assert.equal(await keptDocument(redis, keys, 'rev-5'), undefined);
    assert.equal(await redis.hlen(keys.mappingRevisions), 30);
  });

  test('a revision an operator deleted from the hash is no longer listed', async () => {
    const keys = keysFor('revisions-deleted');
    await keep(keys, 1, 3);
    await redis.hdel(keys.mappingRevisions, 'rev-2');
    assert.deepEqual(
      (await keptRevisions(redis, keys)).map((r) => r.revision),
      ['rev-3', 'rev-1'],
    );
    assert.equal(await keptDocument(redis, keys, 'rev-2'), undefined);
  });

  test('keeping a revision and listing them read no kept document', async () => {
    const keys = keysFor('revisions-reads');
    await keep(keys, 1, 30);
    const reads: string[] = [];
    const monitor = await monitorRedis(REDIS_URL, ({ args }) => {
      if (args[1] === keys.mappingRevisions && /^(hget|hgetall|hmget|hvals)$/i.test(args[0]!)) reads.push(args.slice(0, 3).join(' '));
    });
    try {
      await keep(keys, 31, 32);
      assert.equal((await keptRevisions(redis, keys)).length, 30);
      await monitor.caughtUp(redis);
    } finally {
      monitor.stop();
    }
    assert.deepEqual(reads, []);
  });

  test('revisions kept by an earlier version (no index) are listed by when they came into force, and trimmed with the new; a record not of this hub goes first', async () => {
    const keys = keysFor('revisions-upgrade');
    for (let n = 1; n <= 29; n += 1) await redis.hset(keys.mappingRevisions, `old-${n}`, JSON.stringify({ at: 1_700_000_000_000 + n * 1000, document: documentOf(n) }));
    await redis.hset(keys.mappingRevisions, 'written-by-hand', 'not JSON');
    await keep(keys, 1, 3);
    const kept = await keptRevisions(redis, keys);
    assert.deepEqual(
      kept.map((r) => r.revision),
      ['rev-3', 'rev-2', 'rev-1', ...Array.from({ length: 27 }, (_, i) => `old-${29 - i}`)],
    );
    assert.equal(kept.at(-1)!.at, 1_700_000_003_000);
    assert.equal(await redis.hlen(keys.mappingRevisions), 30);
    assert.deepEqual(await keptDocument(redis, keys, 'old-3'), documentOf(3));
  });
});
