/**
 * Routing keeps the order of `notify:in` whatever Redis refuses: a batch goes
 * as script calls sent at once, each in order, each stopping at the first
 * entry Redis fails, and none going while the entry before it is pending.
 * Refused for now (out of memory), the entry and all after it stay
 * pending and go, in order, when read again; failed for good (a key of the
 * wrong type where its order list belongs), it is dead-lettered in its place
 * and what follows it goes after it. Against real Redis (the out-of-memory
 * case against a Redis of its own, whose `maxmemory` it sets), without plugins.
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
import { type Keys, createKeys } from '../../core/redis/keys.ts';
import type { StreamEntry } from '../../core/redis/stream-consumer.ts';
import { type PrivateRedis, startPrivateRedis } from '../support/private-redis.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

const rules: ReadonlyMap<string, TargetRules> = new Map([['chat', { validate: () => undefined, normalize: (t: string) => t }]]);
const noSource: MappingSource = { description: 'none', connected: true, start: async () => {}, stop: async () => {}, get: async () => null, put: async () => '' };

/** A router against `redis`, with #jammed and #fine one chat room each, and the entries `bodies` in `notify:in`. */
async function setUp(redis: Redis, keys: Keys, bodies: Array<[group: string, body: string]>) {
  const config = hubConfigSchema.parse({ prefix: keys.prefix });
  const store = new MappingStore({ redis, keys, logger: pino({ level: 'silent' }), targetRules: rules, mappingSource: noSource });
  assert.ok(store.apply({ revision: '1-a', document: { mapping: { '#jammed': { chat: ['room-j'] }, '#fine': { chat: ['room-f'] } } } }, 'redis'));
  const deps = { redis, keys, config, mappingStore: store, channels: new Set(['chat']) };
  await redis.xgroup('CREATE', keys.in, 'hub', '0', 'MKSTREAM');
  const ids: string[] = [];
  for (const [group, body] of bodies) ids.push((await redis.xadd(keys.in, '*', 'to', group, 'body', body)) as string);
  const read = async (from: string): Promise<StreamEntry[]> => {
    const reply = (await redis.xreadgroup('GROUP', 'hub', 'test', 'COUNT', 100, 'STREAMS', keys.in, from)) as Array<[string, Array<[string, string[]]>]>;
    return reply[0]![1].map(([id, flat]) => ({ id, claimed: false, fields: fromPairs(flat) }));
  };
  const routed = async () => ((await redis.xrange(keys.deliver('chat'), '-', '+')) as Array<[string, string[]]>).map(([, flat]) => fromPairs(flat).body);
  const pending = async () => ((await redis.xpending(keys.in, 'hub')) as [number])[0];
  return { deps, ids, read, routed, pending };
}

describe('routing: a batch goes in order, whatever Redis refuses', () => {
  let redis: Redis;
  let own: PrivateRedis;
  let ownClient: Redis;
  const prefix = testPrefix('route-order');
  const keys = createKeys(prefix);

  before(async () => {
    redis = connectRedis(REDIS_URL, { name: 'test-route-order', scripts: HUB_SCRIPTS });
    own = await startPrivateRedis({ durable: false });
    ownClient = connectRedis(own.url, { name: 'test-route-order-oom', scripts: HUB_SCRIPTS });
  });
  after(async () => {
    await dropPrefix(prefix, redis);
    redis.disconnect();
    ownClient.disconnect();
    await own.close();
  });

  test('an entry that fails for good is dead-lettered in its place; the entries after it go after it, across the calls of a batch', async () => {
    // A batch of 60 goes as several script calls sent at once: the later calls must wait for the failed entry too.
    const bodies: Array<[string, string]> = Array.from({ length: 60 }, (_, i) => [i === 1 ? '#jammed' : '#fine', `m${i}`]);
    const { deps, ids, read, routed, pending } = await setUp(redis, keys, bodies);
    await redis.set(keys.order('chat', 'room-j'), 'not a list');

    const outcome = await routeBatch(deps, await read('>'));
    assert.deepEqual(outcome, { routed: 59, dead: 1, duplicates: 0, held: 0 });
    assert.deepEqual(await routed(), bodies.filter(([group]) => group === '#fine').map(([, body]) => body));
    const dead = ((await redis.xrange(keys.dead, '-', '+')) as Array<[string, string[]]>).map(([, flat]) => fromPairs(flat));
    assert.deepEqual(dead.map((d) => d.entry), [ids[1]], 'the failed entry is dead-lettered, with its reason');
    assert.match(dead[0]!.reason!, /could not route it \(WRONGTYPE/);
    const events = ((await redis.xrange(keys.events, '-', '+')) as Array<[string, string[]]>).map(([, flat]) => fromPairs(flat));
    assert.deepEqual(events.map((e) => `${e.type} ${e.entry}`), ids.map((id, i) => `${i === 1 ? 'dead' : 'routed'} ${id}`), 'in the order of the stream');
    assert.equal(await pending(), 0, 'nothing left pending');
  });

  test('refused for now (out of memory), the batch routes nothing, and goes in order when read again', async () => {
    const { deps, ids, read, routed, pending } = await setUp(ownClient, keys, [['#fine', 'first'], ['#fine', 'second'], ['#fine', 'third']]);
    const batch = await read('>');
    await ownClient.config('SET', 'maxmemory', '1');
    await assert.rejects(routeBatch(deps, batch), /^ReplyError: OOM/);
    await ownClient.config('SET', 'maxmemory', '0');
    assert.deepEqual(await routed(), [], 'nothing routed');
    assert.equal(await pending(), 3, 'all three still pending');

    const again = await read('0');
    assert.deepEqual(again.map((e) => e.id), ids);
    assert.equal((await routeBatch(deps, again)).routed, 3);
    assert.deepEqual(await routed(), ['first', 'second', 'third']);
    assert.equal(await pending(), 0, 'nothing left pending');
  });
});
