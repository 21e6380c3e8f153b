/**
 * Connections to Redis cut, six times for a second each, under load: on a
 * private `redis-server`, every client connection is killed (`CLIENT KILL
 * TYPE normal`) again and again for 1 s, so the hub, the worker and the
 * producer reconnect over and over. A reply lost with its connection leaves
 * entries in a consumer's pending list that it never saw.
 *
 * What must hold: nothing lost, nothing dead-lettered, no order inversions,
 * and delivery pauses about as long as a blip, not `delivery.claimIdle` (30 s
 * here, as shipped): after a reconnect each consumer reads its own pending
 * list first. The producer carries its own `id`: an XADD it sends again after
 * a cut is folded by the hub.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startPrivateRedis } from '../support/private-redis.ts';
import { LOAD, rigPerTest, until } from './rig.ts';

const rigs = rigPerTest();

/** Kill every client connection but this one, every 20 ms for `ms`; resolves with how many were killed. */
async function cutConnections(server: Redis, ms: number): Promise<number> {
  let killed = 0;
  const until = performance.now() + ms;
  while (performance.now() < until) {
    killed += Number(await server.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes'));
    await sleep(20);
  }
  return killed;
}

describe('faults: Redis connections cut', () => {
  test('every connection cut for 1 s, six times, under load: nothing lost, nothing out of order, no pause of claimIdle', async () => {
    const redis = await startPrivateRedis({ durable: false });
    rigs.onClose(() => redis.close());
    const server = new Redis(redis.url);
    rigs.onClose(() => server.disconnect());
    const r = await rigs.start({ scenario: 'redis/connections-cut', channels: ['matrix'], redisUrl: redis.url, delivery: { claimIdle: '30s' } });
    r.hs.delay(5);
    const rooms = Array.from({ length: 8 }, () => r.room());
    r.writeMapping(Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])));
    const processes = [await r.hub(), await r.worker('matrix')];
    const blips: Array<{ at: number; killed: number }> = [];
    const count = LOAD * 2;
    await r.produce({
      count,
      perSecond: 250,
      groupOf: (seq) => `#g${seq % 4}`,
      producerIds: true,
      during: async (sent) => {
        for (let i = 1; i <= 6; i += 1) {
          await until('load', () => sent() >= (count * i) / 8, 60_000);
          blips.push({ at: sent(), killed: await cutConnections(server, 1000) });
        }
      },
    });
    r.notes.blips = blips;
    const figures = await r.settle(120_000);
    r.report(figures);
    assert.deepEqual(figures.reasons, {}, 'a cut connection dead-letters nothing');
    assert.deepEqual(processes.filter((p) => !p.running).map((p) => p.name), [], 'every process rode the cuts out');
  });
});
