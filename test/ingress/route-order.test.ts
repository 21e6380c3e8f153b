/**
 * Routing keeps the order of `notify:in` when Redis refuses one route call of
 * a batch and takes the next ones (memory freed between two calls of one
 * pipeline): an entry goes only once the entry before it in the batch went,
 * and what waited is read again, in order. Against the real Redis, without
 * plugins; the refusal here is a permanent one (a key of the wrong type where
 * the first entry's order list belongs), which the router dead-letters, so
 * that what follows it can be watched waiting and then going.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { hubConfigSchema } from '../../core/config/schema.ts';
import { HUB_SCRIPTS } from '../../core/container.ts';
import { routeBatch } from '../../core/ingress/router.ts';
import type { MappingSource } from '../../core/mapping/source.ts';
import { MappingStore } from '../../core/mapping/store.ts';
import type { TargetRules } from '../../core/mapping/validate.ts';
import { connectRedis } from '../../core/redis/connect.ts';
import { fromPairs } from '../../core/redis/fields.ts';
import { createKeys } from '../../core/redis/keys.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

const rules: ReadonlyMap<string, TargetRules> = new Map([['chat', { validate: () => undefined, normalize: (t: string) => t }]]);
const noSource: MappingSource = { description: 'none', connected: true, start: async () => {}, stop: async () => {}, get: async () => null, put: async () => '' };

describe('routing: a batch goes in order, even when Redis refuses part of it', () => {
  let redis: Redis;
  const prefix = testPrefix('route-order');
  const keys = createKeys(prefix);
  const config = hubConfigSchema.parse({ prefix });

  before(async () => {
    redis = connectRedis(REDIS_URL, { name: 'test-route-order', scripts: HUB_SCRIPTS });
    await redis.xgroup('CREATE', keys.in, 'hub', '0', 'MKSTREAM');
  });
  after(async () => {
    await dropPrefix(prefix, redis);
    redis.disconnect();
  });

  test('the entries after a refused one wait for it, then go in order', async () => {
    const store = new MappingStore({ redis, keys, logger: pino({ level: 'silent' }), targetRules: rules, mappingSource: noSource });
    assert.ok(store.apply({ revision: '1-a', document: { mapping: { '#jammed': { chat: ['room-j'] }, '#fine': { chat: ['room-f'] } } } }, 'redis'));
    const deps = { redis, keys, config, mappingStore: store, channels: new Set(['chat']) };
    await redis.set(keys.order('chat', 'room-j'), 'not a list');
    const ids = [
      (await redis.xadd(keys.in, '*', 'to', '#jammed', 'body', 'first')) as string,
      (await redis.xadd(keys.in, '*', 'to', '#fine', 'body', 'second')) as string,
      (await redis.xadd(keys.in, '*', 'to', '#fine', 'body', 'third')) as string,
    ];
    const read = async (from: string) => {
      const reply = (await redis.xreadgroup('GROUP', 'hub', 'test', 'COUNT', 10, 'STREAMS', keys.in, from)) as Array<[string, Array<[string, string[]]>]>;
      return reply[0]![1].map(([id, flat]) => ({ id, claimed: false, fields: fromPairs(flat) }));
    };
    const routed = async () => ((await redis.xrange(keys.deliver('chat'), '-', '+')) as Array<[string, string[]]>).map(([, flat]) => fromPairs(flat).body);

    // One batch, one pipeline: the first is refused, the two after it wait for it.
    await assert.rejects(routeBatch(deps, await read('>')), /2 entries wait for an older one that was not routed; reading them again in order/);
    assert.deepEqual(await routed(), [], 'nothing routed ahead of the refused entry');
    const dead = ((await redis.xrange(keys.dead, '-', '+')) as Array<[string, string[]]>).map(([, flat]) => fromPairs(flat));
    assert.deepEqual(dead.map((d) => d.entry), [ids[0]], 'the refused entry is dead-lettered, with its reason');
    assert.match(dead[0]!.reason!, /WRONGTYPE/);

    // Read again from the pending list, as the hub does after a failed batch: they go now, in order.
    const again = await read('0');
    assert.deepEqual(again.map((e) => e.id), ids.slice(1));
    const outcome = await routeBatch(deps, again);
    assert.equal(outcome.routed, 2);
    assert.deepEqual(await routed(), ['second', 'third']);
    assert.deepEqual((await redis.xpending(keys.in, 'hub')) as unknown[], [0, null, null, null], 'nothing left pending');
  });
});
